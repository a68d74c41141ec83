package dev.llamaj.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/// Streaming decode for one generation: feed tokens as they are sampled, print what comes back.
///
/// A token's bytes can end inside a UTF-8 character: an emoji is often two or three byte-level BPE tokens, or
/// four `<0xNN>` byte-fallback tokens in a SentencePiece vocabulary. [#append] therefore returns only whole
/// characters and holds back the bytes of a character still being completed, so the output never shows a
/// replacement character for valid text. Bytes that can no longer become valid UTF-8 come out as U+FFFD at once;
/// an incomplete character left over at the end becomes U+FFFD in [#finish]. Control tokens produce nothing.
///
/// Unlike [Tokenizer#decode], no leading space is removed: a generation continues a prompt, so the space that
/// starts its first word belongs to the text. Not thread-safe; use one per generation.
public final class Detokenizer {
    private final Tokenizer tokenizer;
    private byte[] pending = new byte[8];
    private int pendingLength;

    Detokenizer(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /// The text that `token` completes: possibly empty, possibly including characters begun by earlier tokens.
    ///
    /// @throws IndexOutOfBoundsException if `token` is not in the vocabulary
    public String append(int token) {
        byte[] bytes = tokenizer.bytes(token);
        if (bytes.length == 0) {
            return "";
        }
        if (pendingLength + bytes.length > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(2 * pending.length, pendingLength + bytes.length));
        }
        System.arraycopy(bytes, 0, pending, pendingLength, bytes.length);
        pendingLength += bytes.length;
        int complete = completeLength(pending, pendingLength);
        if (complete == 0) {
            return "";
        }
        String text = new String(pending, 0, complete, StandardCharsets.UTF_8);
        System.arraycopy(pending, complete, pending, 0, pendingLength - complete);
        pendingLength -= complete;
        return text;
    }

    /// Flushes the bytes held back, each incomplete character becoming U+FFFD, and resets this detokenizer.
    public String finish() {
        String text = new String(pending, 0, pendingLength, StandardCharsets.UTF_8);
        pendingLength = 0;
        return text;
    }

    /// The length of the longest prefix of `bytes[0, length)` that does not end inside a character that could
    /// still be completed. Only the last character can be incomplete, and it starts at most 3 bytes back.
    static int completeLength(byte[] bytes, int length) {
        int lead = length - 1;
        while (lead >= 0 && length - lead <= 3 && (bytes[lead] & 0xC0) == 0x80) {
            lead--;
        }
        if (lead < 0 || (bytes[lead] & 0xC0) == 0x80) {
            return length; // stray continuation bytes: invalid whatever follows
        }
        int first = bytes[lead] & 0xFF;
        int needed = first >= 0xC2 && first <= 0xDF ? 2 : first >= 0xE0 && first <= 0xEF ? 3
                : first >= 0xF0 && first <= 0xF4 ? 4 : 1;
        int have = length - lead;
        if (have >= needed) {
            return length;
        }
        // incomplete: hold it back only if it can still become valid (no overlong forms, surrogates or > U+10FFFF)
        if (have >= 2) {
            int second = bytes[lead + 1] & 0xFF;
            boolean possible = switch (first) {
                case 0xE0 -> second >= 0xA0;
                case 0xED -> second <= 0x9F;
                case 0xF0 -> second >= 0x90;
                case 0xF4 -> second <= 0x8F;
                default -> true;
            };
            if (!possible) {
                return length;
            }
        }
        return lead;
    }
}
