package dev.llamaj.cli.server;

import dev.llamaj.engine.Completion;
import dev.llamaj.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/// Generated tokens' log-probabilities in the two JSON shapes of OpenAI's API: chat's `logprobs.content[]`
/// (token, logprob, bytes, top_logprobs) and the legacy completions' parallel arrays (tokens, token_logprobs,
/// top_logprobs, text_offset).
///
/// The values are those the engine's sampler drew from (after logit bias, penalties, constraint, top-k/top-p/min-p
/// and temperature; greedy: the softmax of the processed logits): see [Completion.Token#logprob()]. A token's text
/// is its bytes read as UTF-8, so a token holding part of a character shows U+FFFD there; `bytes` is exact.
final class LogprobsJson {
    private final Tokenizer tokenizer;

    LogprobsJson(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /// Chat: `{"content": [...], "refusal": null}`.
    Map<String, Object> chat(List<Completion.Token> tokens) {
        List<Object> content = new ArrayList<>(tokens.size());
        for (Completion.Token t : tokens) {
            Map<String, Object> entry = entry(t.id(), t.logprob());
            List<Object> top = new ArrayList<>(t.top().size());
            for (Completion.Alternative a : t.top()) {
                top.add(entry(a.id(), a.logprob()));
            }
            entry.put("top_logprobs", top);
            content.add(entry);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("content", content);
        m.put("refusal", null);
        return m;
    }

    private Map<String, Object> entry(int id, float logprob) {
        byte[] bytes = tokenizer.bytes(id);
        List<Integer> list = new ArrayList<>(bytes.length);
        for (byte b : bytes) {
            list.add(b & 0xFF);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("token", new String(bytes, StandardCharsets.UTF_8));
        m.put("logprob", (double) logprob);
        m.put("bytes", list);
        return m;
    }

    /// Legacy completions: parallel arrays; `textOffset` is where the first token starts in the choice's text
    /// (in code points), for a streamed chunk that is not the first.
    Map<String, Object> legacy(List<Completion.Token> tokens, int textOffset) {
        List<Object> texts = new ArrayList<>(tokens.size());
        List<Object> logprobs = new ArrayList<>(tokens.size());
        List<Object> tops = new ArrayList<>(tokens.size());
        List<Object> offsets = new ArrayList<>(tokens.size());
        int offset = textOffset;
        for (Completion.Token t : tokens) {
            byte[] bytes = tokenizer.bytes(t.id());
            texts.add(new String(bytes, StandardCharsets.UTF_8));
            logprobs.add((double) t.logprob());
            Map<String, Object> top = new LinkedHashMap<>();
            for (Completion.Alternative a : t.top()) {
                // two tokens can share a text (a byte token and a piece): the likelier keeps the key
                top.putIfAbsent(new String(tokenizer.bytes(a.id()), StandardCharsets.UTF_8), (double) a.logprob());
            }
            tops.add(top);
            offsets.add(offset);
            offset += codePoints(bytes);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tokens", texts);
        m.put("token_logprobs", logprobs);
        m.put("top_logprobs", tops);
        m.put("text_offset", offsets);
        return m;
    }

    /// Code points that the tokens' text adds (UTF-8 bytes that start a character).
    int codePoints(List<Completion.Token> tokens) {
        int n = 0;
        for (Completion.Token t : tokens) {
            n += codePoints(tokenizer.bytes(t.id()));
        }
        return n;
    }

    private static int codePoints(byte[] bytes) {
        int n = 0;
        for (byte b : bytes) {
            if ((b & 0xC0) != 0x80) {
                n++;
            }
        }
        return n;
    }

    /// The tokens that made `c`'s text: when a stop string ended it, the tokens that only held the stop string
    /// (or what followed it) are dropped, as the text drops them.
    List<Completion.Token> visible(List<Completion.Token> tokens, Completion c) {
        if (c.stopReason() != Completion.StopReason.STOP_STRING) {
            return tokens;
        }
        int textBytes = c.text().getBytes(StandardCharsets.UTF_8).length;
        int offset = 0;
        int kept = 0;
        while (kept < tokens.size() && offset < textBytes) {
            offset += tokenizer.bytes(tokens.get(kept).id()).length;
            kept++;
        }
        return tokens.subList(0, kept);
    }
}
