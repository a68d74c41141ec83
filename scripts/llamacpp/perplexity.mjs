#!/usr/bin/env node
// llama.cpp's perplexity of a GGUF model on a text, through node-llama-cpp's prebuilt llama.cpp, computed the way
// llamaj's `llama perplexity` (engine Perplexity.java) and llama.cpp's `llama-perplexity` compute it, so the three
// can be put side by side, in particular with a quantized key/value cache:
//
//   node perplexity.mjs MODEL.gguf TEXT [-c 128] [--chunks N] [-ctk f16|q8_0|q4_0] [-ctv f16|q8_0|q4_0]
//                       [-fa on|off|auto] [--rotation auto|off] [-t 2] [--json]
//
// The method (see Perplexity.java's description):
//   tokens   = [BOS] + tokenize(text)        the file as it is, control-token text left as plain text
//   chunks   = floor(tokens / n_ctx)         (the rest is dropped; --chunks lowers it)
//   chunk k  = tokens[k*n_ctx .. (k+1)*n_ctx), first token replaced by BOS, evaluated from an empty sequence
//   scored   = logits at positions n_ctx/2 .. n_ctx-2 predict the tokens at n_ctx/2+1 .. n_ctx-1
//   PPL      = exp(mean nll over all scored tokens so far), printed after each chunk, with llama.cpp's error
//
// Where the log-probabilities come from: node-llama-cpp gives no raw logits, but `controlledEvaluate` returns, for
// any input position, the full next-token distribution after the sampler chain. With temperature 0 that chain is
// llama.cpp's greedy sampler alone, which leaves the logits untouched, so the distribution is the plain softmax of
// the logits (computed by the addon in float, after subtracting the maximum). Its log loses nothing that matters
// here (float's relative precision is 1e-7); a probability that underflows to 0 is reported, not hidden.
//
// A chunk is evaluated as one batch of n_ctx tokens, as llama-perplexity does when n_ctx fits its batch: every
// position reads the keys and values of the whole chunk back from the (possibly quantized) cache. The context has
// room for one token more than a chunk: this build of llama.cpp crashes (segmentation fault) when a batch fills
// the whole context while the key cache is quantized and not rotated (see --rotation), with or without flash
// attention. The spare cell is masked out and changes no number.
//
// Since April 2026 (llama.cpp PR 21038, in node-llama-cpp 3.21.1's build) llama.cpp multiplies queries, keys and
// values by a Hadamard matrix before a quantized cache stores them, when the head size allows it (a multiple of
// 64), which spreads outlier channels over the block and lowers the quantization error; llamaj quantizes the
// plain vectors. `--rotation off` sets LLAMA_ATTN_ROT_DISABLE=1 (llama.cpp's own switch) for the plain
// llama.cpp method; the result reports whether keys and values were rotated (llama.cpp's attn_rot_k/v log lines).

process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
process.env.NODE_LLAMA_CPP_GPU = "false";

const usage = "usage: node perplexity.mjs MODEL.gguf TEXT [-c 128] [--chunks N] [-ctk f16|q8_0|q4_0] "
    + "[-ctv f16|q8_0|q4_0] [-fa on|off|auto] [--rotation auto|off] [-t 2] [--json]";
const cacheTypes = {f16: "F16", q8_0: "Q8_0", q4_0: "Q4_0"};

function fail(message) {
    console.error("perplexity.mjs: " + message);
    process.exit(2);
}

function parseArgs(args) {
    const opt = {model: null, text: null, ctx: 128, chunks: -1, ctk: "f16", ctv: "f16", fa: "on", rotation: "auto",
        threads: 2, json: false};
    const value = (i, name) => {
        if (i >= args.length) fail(`${name} needs a value\n${usage}`);
        return args[i];
    };
    const integer = (s, name, min) => {
        if (!/^-?\d+$/.test(s) || Number(s) < min) fail(`${name} must be an integer >= ${min}, got '${s}'`);
        return Number(s);
    };
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === "-c" || a === "--ctx-size") opt.ctx = integer(value(++i, a), a, 4);
        else if (a === "--chunks") opt.chunks = integer(value(++i, a), a, 1);
        else if (a === "-ctk" || a === "--cache-type-k") opt.ctk = value(++i, a);
        else if (a === "-ctv" || a === "--cache-type-v") opt.ctv = value(++i, a);
        else if (a === "-fa" || a === "--flash-attn") opt.fa = value(++i, a);
        else if (a === "--rotation") opt.rotation = value(++i, a);
        else if (a === "-t" || a === "--threads") opt.threads = integer(value(++i, a), a, 1);
        else if (a === "--json") opt.json = true;
        else if (a === "-h" || a === "--help") { console.log(usage); process.exit(0); }
        else if (a.startsWith("-")) fail(`unknown option ${a}\n${usage}`);
        else if (opt.model == null) opt.model = a;
        else if (opt.text == null) opt.text = a;
        else fail(`unexpected argument ${a}\n${usage}`);
    }
    if (opt.model == null || opt.text == null) fail(usage);
    for (const [name, t] of [["-ctk", opt.ctk], ["-ctv", opt.ctv]])
        if (!(t in cacheTypes)) fail(`${name} must be one of ${Object.keys(cacheTypes).join(", ")}, got '${t}'`);
    if (!["on", "off", "auto"].includes(opt.fa)) fail(`-fa must be on, off or auto, got '${opt.fa}'`);
    if (!["auto", "off"].includes(opt.rotation)) fail(`--rotation must be auto or off, got '${opt.rotation}'`);
    return opt;
}

const opt = parseArgs(process.argv.slice(2));
const fs = await import("node:fs");
let text;
try {
    text = fs.readFileSync(opt.text, "utf8");
} catch (e) {
    fail(`cannot read ${opt.text}: ${e.code ?? e.message}`);
}

if (opt.rotation === "off") process.env.LLAMA_ATTN_ROT_DISABLE = "1"; // read by llama.cpp when a cache is made
const {getLlama, LlamaLogLevel} = await import("node-llama-cpp");
const llamaErrors = [];
const rotated = {k: false, v: false};
const llama = await getLlama({
    gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, progressLogs: false,
    maxThreads: opt.threads, logLevel: LlamaLogLevel.info,
    // keep llama.cpp's refusals (e.g. "K cache type q8_0 ... does not divide n_embd_head_k=8") for the error line,
    // and whether it rotates the cache ("attn_rot_k = 1")
    logger: (level, message) => {
        const m = String(message).trim();
        const rot = m.match(/attn_rot_([kv]) = (\d+)/);
        if (rot) rotated[rot[1]] = rot[2] !== "0";
        else if (level === LlamaLogLevel.error || /does not divide|requires/.test(m)) llamaErrors.push(m);
    }
});
let model;
try {
    model = await llama.loadModel({modelPath: opt.model, gpuLayers: 0});
} catch (e) {
    fail(`cannot load ${opt.model}: ${e.message}`);
}

// Tokenize as llama.cpp's common_tokenize(ctx, text, add_special = true, parse_special = false).
const bos = model.tokens.bos;
const addBos = model.fileInfo.metadata?.tokenizer?.ggml?.add_bos_token ?? true;
const tokens = addBos && bos != null ? [bos, ...model.tokenize(text, false)] : model.tokenize(text, false);
const n = opt.ctx;
if (tokens.length < 2 * n)
    fail(`the text is ${tokens.length} tokens but perplexity with a context of ${n} needs at least ${2 * n}`);
const chunks = opt.chunks > 0 ? Math.min(opt.chunks, Math.floor(tokens.length / n)) : Math.floor(tokens.length / n);
const first = Math.floor(n / 2);

let context;
try {
    context = await model.createContext({
        contextSize: n + 1, batchSize: n, sequences: 1, threads: opt.threads,
        flashAttention: opt.fa === "on" ? true : opt.fa === "off" ? false : "auto",
        experimentalKvCacheKeyType: cacheTypes[opt.ctk], experimentalKvCacheValueType: cacheTypes[opt.ctv],
        failedCreationRemedy: false, ignoreMemorySafetyChecks: true
    });
} catch (e) {
    const why = [...new Set(llamaErrors)].map((m) => m.replace(/^llama_init_from_model:\s*/, "")).join("; ");
    fail(`llama.cpp refused the context (-ctk ${opt.ctk} -ctv ${opt.ctv} -fa ${opt.fa}): ${why || e.message}`);
}
const seq = context.getSequence();

// Running sums over the scored tokens, as Perplexity.Stats.
let count = 0, nll = 0, nll2 = 0, underflows = 0;
const perplexity = () => Math.exp(nll / count);
const uncertainty = () => {
    if (count < 2) return NaN;
    const mean = nll / count, variance = nll2 / count - mean * mean;
    return perplexity() * (variance > 0 ? Math.sqrt(variance / (count - 1)) : 0);
};

const greedy = {generateNext: {probabilities: true, options: {temperature: 0}}};
const perChunk = [];
const start = process.hrtime.bigint();
if (!opt.json)
    console.error(`perplexity over ${chunks} chunks of ${n} tokens (${tokens.length} tokens in the text, `
        + `${n - first - 1} scored per chunk); llama.cpp ${llama.llamaCppRelease.release}, K ${opt.ctk}, V ${opt.ctv}, `
        + `flash attention ${context.flashAttention ? "on" : "off"}, rotated: K ${rotated.k ? "yes" : "no"}, `
        + `V ${rotated.v ? "yes" : "no"}`);
for (let c = 0; c < chunks; c++) {
    const chunk = tokens.slice(c * n, (c + 1) * n);
    if (addBos && bos != null) chunk[0] = bos;
    await seq.clearHistory();
    // positions first .. n-2 ask for the next-token distribution; the others are context only
    const input = chunk.map((t, i) => (i >= first && i < n - 1 ? [t, greedy] : t));
    const out = await seq.controlledEvaluate(input);
    for (let i = first; i < n - 1; i++) {
        const p = out[i]?.next?.probabilities?.get(chunk[i + 1]);
        if (p == null) fail(`no distribution returned for position ${i} of chunk ${c + 1}`);
        if (p === 0) underflows++;
        const v = -Math.log(p);
        count++;
        nll += v;
        nll2 += v * v;
    }
    perChunk.push(perplexity());
    if (!opt.json) console.log(`[${c + 1}]${perplexity().toFixed(4)} ± ${uncertainty().toFixed(5)}`);
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
if (underflows > 0)
    console.error(`warning: ${underflows} scored token(s) had probability 0 in float (infinite loss)`);

const result = {
    tool: "node-llama-cpp",
    llamaCppRelease: llama.llamaCppRelease.release,
    model: opt.model, text: opt.text, tokens: tokens.length, n_ctx: n, chunks, scored: count,
    cache_type_k: opt.ctk, cache_type_v: opt.ctv, flash_attn: context.flashAttention,
    rotated_k: rotated.k, rotated_v: rotated.v,
    ppl: perplexity(), ppl_error: uncertainty(), per_chunk: perChunk, seconds
};
if (opt.json) {
    console.log(JSON.stringify(result));
} else {
    console.log(perChunk.map((p, i) => `[${i + 1}]${p.toFixed(4)}`).join(","));
    console.log(`Final estimate: PPL = ${perplexity().toFixed(4)} +/- ${uncertainty().toFixed(5)}`);
}
await context.dispose();
await model.dispose();
await llama.dispose();
