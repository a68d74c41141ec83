#!/usr/bin/env node
// Rewrites an F32 Llama-architecture GGUF with its attention heads padded with zeros to a larger head size, leaving
// the function the model computes unchanged (up to float rounding). Why: llama.cpp refuses a quantized key/value
// cache unless the head size is a multiple of the block size (32), and the only trained model here, stories260K,
// has heads of 8. Padded to 32, both llama.cpp and llamaj accept every cache type on the same trained weights.
//
//   node pad-heads.mjs IN.gguf OUT.gguf [--head 32]
//
// For a head of size h padded to H (H a multiple of h, H/h = f):
//   - dimension d of every query, key and value head moves to f*(d - d%2) + d%2: the pairs (2i, 2i+1) that
//     Llama's RoPE ("NORM") rotates land on pairs (2fi, 2fi+1), whose frequency with H rotated dimensions,
//     base^(-2fi/H), is the original base^(-2i/h); the other pairs hold zeros, which rotation keeps at zero
//     (llama.cpp requires n_rot = head size for this architecture, so the rotation cannot simply stop at h);
//   - attn_q rows are multiplied by sqrt(H/h) (exact for H/h = 4): the attention scale becomes 1/sqrt(H), so the
//     scores q·k/sqrt(h) are unchanged;
//   - attn_output gets zero columns for the padding; key_length, value_length and rope.dimension_count become H.
// A quantized cache block then holds one head's h values and H - h zeros (which quantize to exactly 0), so its
// scale comes from one head, where the unpadded model shares a block between 32/h heads: the padded figures
// measure the cache types on real activations, not on stories260K's shared-block layout.

import fs from "node:fs";

const [inPath, outPath, ...rest] = process.argv.slice(2);
let H = 32;
for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--head" && /^\d+$/.test(rest[i + 1] ?? "")) H = Number(rest[++i]);
    else { console.error("pad-heads.mjs: unknown argument " + rest[i]); process.exit(2); }
}
if (!inPath || !outPath) {
    console.error("usage: node pad-heads.mjs IN.gguf OUT.gguf [--head 32]");
    process.exit(2);
}

// ---- GGUF reading (version 3; only what this rewrite needs) ----
const buf = fs.readFileSync(inPath);
let pos = 0;
const u32 = () => { const v = buf.readUInt32LE(pos); pos += 4; return v; };
const u64 = () => { const v = Number(buf.readBigUInt64LE(pos)); pos += 8; return v; };
const str = () => { const n = u64(); const s = buf.toString("utf8", pos, pos + n); pos += n; return s; };
const scalarSize = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8};
function skipValue(type) {
    if (type === 8) { str(); return; }
    if (type === 9) {
        const elem = u32(), n = u64();
        if (elem in scalarSize) pos += n * scalarSize[elem];
        else for (let i = 0; i < n; i++) skipValue(elem);
        return;
    }
    if (!(type in scalarSize)) throw new Error("unknown GGUF value type " + type);
    pos += scalarSize[type];
}

if (buf.toString("latin1", 0, 4) !== "GGUF") throw new Error(inPath + " is not a GGUF file");
pos = 4;
const version = u32();
if (version !== 3) throw new Error("GGUF version " + version + " (only 3 is handled)");
const tensorCount = u64(), kvCount = u64();
const kvs = []; // {key, type, raw: the value's bytes as stored}
for (let i = 0; i < kvCount; i++) {
    const key = str(), type = u32(), start = pos;
    skipValue(type);
    kvs.push({key, type, raw: buf.subarray(start, pos)});
}
const meta = (key) => {
    const kv = kvs.find((k) => k.key === key);
    if (!kv) return undefined;
    if (kv.type === 4) return kv.raw.readUInt32LE(0);
    if (kv.type === 6) return kv.raw.readFloatLE(0);
    if (kv.type === 8) return kv.raw.toString("utf8", 8);
    return kv.raw;
};
const tensors = [];
for (let i = 0; i < tensorCount; i++) {
    const name = str(), nDims = u32();
    const dims = Array.from({length: nDims}, () => u64());
    tensors.push({name, dims, type: u32(), offset: u64()});
}
const alignment = meta("general.alignment") ?? 32;
const dataStart = Math.ceil(pos / alignment) * alignment;

const arch = meta("general.architecture");
if (arch !== "llama") throw new Error(`architecture ${arch}: only llama is handled`);
const nHead = meta("llama.attention.head_count"), nKv = meta("llama.attention.head_count_kv") ?? nHead;
const nEmbd = meta("llama.embedding_length");
const h = meta("llama.attention.key_length") ?? nEmbd / nHead;
if ((meta("llama.rope.dimension_count") ?? h) !== h) throw new Error("the model already rotates only part of its heads");
if (H % h !== 0 || H <= h) throw new Error(`--head ${H} must be a multiple of the head size ${h}, larger than it`);
if (tensors.some((t) => t.type !== 0)) throw new Error("only all-F32 models are handled");
const f = H / h;
const qScale = Math.sqrt(f);
const at = (d) => f * (d - (d % 2)) + (d % 2); // where dimension d of a head goes

// ---- the rewrite ----
// ggml order: dims[0] is the input width, dims[1] the rows (outputs); row r starts at r * dims[0].
function read(t) {
    const n = t.dims.reduce((a, b) => a * b, 1), o = dataStart + t.offset;
    return new Float32Array(buf.buffer.slice(buf.byteOffset + o, buf.byteOffset + o + 4 * n));
}
function padRows(t, heads, scale) { // projections into heads: rows head*h + d -> head*H + at(d)
    const src = read(t), cols = t.dims[0], out = new Float32Array(cols * heads * H);
    for (let hd = 0; hd < heads; hd++)
        for (let d = 0; d < h; d++)
            for (let c = 0; c < cols; c++) out[(hd * H + at(d)) * cols + c] = src[(hd * h + d) * cols + c] * scale;
    return {dims: [cols, heads * H], data: out};
}
function padColumns(t) { // attn_output: input columns head*h + d -> head*H + at(d)
    const src = read(t), cols = t.dims[0], rows = t.dims[1], out = new Float32Array(nHead * H * rows);
    for (let r = 0; r < rows; r++)
        for (let hd = 0; hd < nHead; hd++)
            for (let d = 0; d < h; d++) out[r * nHead * H + hd * H + at(d)] = src[r * cols + hd * h + d];
    return {dims: [nHead * H, rows], data: out};
}
const outTensors = tensors.map((t) => {
    const kind = t.name.match(/\.(attn_q|attn_k|attn_v|attn_output)\.weight$/)?.[1];
    const x = kind === "attn_q" ? padRows(t, nHead, qScale)
        : kind === "attn_k" || kind === "attn_v" ? padRows(t, nKv, 1)
        : kind === "attn_output" ? padColumns(t)
        : {dims: t.dims, data: read(t)};
    return {name: t.name, ...x};
});

// ---- GGUF writing ----
const u32Value = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const setU32 = (key, v) => {
    const kv = kvs.find((k) => k.key === key);
    if (kv) { kv.type = 4; kv.raw = u32Value(v); } else kvs.push({key, type: 4, raw: u32Value(v)});
};
setU32("llama.attention.key_length", H);
setU32("llama.attention.value_length", H);
setU32("llama.rope.dimension_count", H);

const parts = [];
const w32 = (v) => parts.push(u32Value(v));
const w64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
const wStr = (s) => { const b = Buffer.from(s, "utf8"); w64(b.length); parts.push(b); };
parts.push(Buffer.from("GGUF", "latin1"));
w32(3);
w64(outTensors.length);
w64(kvs.length);
for (const kv of kvs) { wStr(kv.key); w32(kv.type); parts.push(kv.raw); }
let offset = 0;
for (const t of outTensors) {
    t.offset = offset;
    wStr(t.name); w32(t.dims.length); t.dims.forEach(w64); w32(0); w64(offset);
    offset += Math.ceil(t.data.byteLength / alignment) * alignment;
}
const headerLength = parts.reduce((a, b) => a + b.length, 0);
parts.push(Buffer.alloc(Math.ceil(headerLength / alignment) * alignment - headerLength));
for (const t of outTensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    parts.push(bytes, Buffer.alloc(Math.ceil(bytes.length / alignment) * alignment - bytes.length));
}
fs.writeFileSync(outPath, Buffer.concat(parts));
console.error(`${outPath}: ${nHead} query and ${nKv} key/value heads of ${h} padded to ${H} (queries scaled by ${qScale})`);
