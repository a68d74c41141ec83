#!/usr/bin/env node
// llama.cpp's throughput when several sequences generate at once (as `llama-batched-bench`), through
// node-llama-cpp's prebuilt llama.cpp: the reference for llamaj's `bench --parallel`.
//
//   node batched-bench.mjs MODEL.gguf [--parallel 1,2,4,8] [--threads 2] [--pp 32] [--tg 64] [--reps 1]
//                          [--fa auto|on|off] [--json]
//
// For each N of --parallel, one context with N sequences (each with room for pp + tg tokens):
//   PP  every sequence gets its own prompt of pp tokens (BOS, then pseudo-random tokens) and samples its first token;
//       the N prompts are submitted together, so llama.cpp decodes them in one batch of N * pp tokens
//   TG  tg steps; at each step every sequence decodes its last token and samples the next one greedily, and the
//       N single-token evaluations are submitted together, so each step is one llama_decode of N tokens
//   S_PP = N * pp / T_PP, S_TG (aggregate) = N * tg / T_TG, per stream = tg / T_TG      (llama-batched-bench's S_TG)
// End-of-generation tokens do not stop a sequence (they are fed back like any other token), so every sequence
// generates exactly tg tokens. One untimed warm-up run per N first; with --reps R the mean of R timed runs.
//
// node-llama-cpp merges the evaluations that sequences of one context queue in the same event-loop cycle into one
// batch. The script checks that this happened by counting the native decode calls during TG and prints tokens per
// decode (N when every step is one batch); a figure below N means the streams were not batched and the aggregate is
// not llama.cpp's batched throughput.
//
// JSON (--json): {"results": {"1": {"aggregate": t/s, "per_stream": t/s, "pp": t/s, "tokens_per_decode": N}, ...},
// plus what ran: llama.cpp release, threads, flash attention, pp, tg, reps}.

process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
process.env.NODE_LLAMA_CPP_GPU = "false";

const usage = "usage: node batched-bench.mjs MODEL.gguf [--parallel 1,2,4,8] [--threads 2] [--pp 32] [--tg 64] "
    + "[--reps 1] [--fa auto|on|off] [--json]";

function fail(message) {
    console.error("batched-bench.mjs: " + message);
    process.exit(2);
}

function parseArgs(args) {
    const opt = {model: null, parallel: [1, 2, 4, 8], threads: 2, pp: 32, tg: 64, reps: 1, fa: "auto", json: false};
    const value = (i, name) => {
        if (i >= args.length) fail(`${name} needs a value\n${usage}`);
        return args[i];
    };
    const integer = (s, name, min) => {
        if (!/^\d+$/.test(s) || Number(s) < min) fail(`${name} must be an integer >= ${min}, got '${s}'`);
        return Number(s);
    };
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === "--parallel" || a === "-npl") {
            const list = value(++i, a);
            opt.parallel = list.split(",").map((s) => integer(s.trim(), a, 1));
        } else if (a === "--threads" || a === "-t") opt.threads = integer(value(++i, a), a, 1);
        else if (a === "--pp" || a === "-npp") opt.pp = integer(value(++i, a), a, 1);
        else if (a === "--tg" || a === "-ntg") opt.tg = integer(value(++i, a), a, 1);
        else if (a === "--reps" || a === "-r") opt.reps = integer(value(++i, a), a, 1);
        else if (a === "--fa" || a === "-fa") opt.fa = value(++i, a);
        else if (a === "--json") opt.json = true;
        else if (a === "-h" || a === "--help") { console.log(usage); process.exit(0); }
        else if (a.startsWith("-")) fail(`unknown option ${a}\n${usage}`);
        else if (opt.model == null) opt.model = a;
        else fail(`unexpected argument ${a}\n${usage}`);
    }
    if (opt.model == null) fail(usage);
    if (!["on", "off", "auto"].includes(opt.fa)) fail(`--fa must be on, off or auto, got '${opt.fa}'`);
    return opt;
}

const opt = parseArgs(process.argv.slice(2));
const {getLlama, LlamaLogLevel} = await import("node-llama-cpp");
const llama = await getLlama({
    gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, progressLogs: false,
    maxThreads: opt.threads, logLevel: LlamaLogLevel.error
});
let model;
try {
    model = await llama.loadModel({modelPath: opt.model, gpuLayers: 0});
} catch (e) {
    fail(`cannot load ${opt.model}: ${e.message}`);
}
const nVocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length ?? 32000;
const bos = model.tokens.bos;

// Deterministic pseudo-random prompts, different for every sequence.
let seed = 12345;
const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) % nVocab;
const prompt = (n) => Array.from({length: n}, (_, i) => (i === 0 && bos != null ? bos : rnd()));

// Counts the native decode calls of a context and the tokens they carried, by putting a counting proxy in front of
// node-llama-cpp's internal addon object (`_ctx`, whose methods cannot be replaced; its methods are called bound to
// the real object). If a later version renames it, the check reports n/a rather than failing the run.
function countDecodes(context) {
    const counts = {decodes: 0, tokens: 0, enabled: false};
    const native = context._ctx;
    if (native == null || typeof native.decodeBatch !== "function" || typeof native.addToBatch !== "function")
        return counts;
    const proxy = new Proxy(native, {
        get(target, prop) {
            const v = target[prop];
            if (typeof v !== "function") return v;
            if (prop === "decodeBatch") return (...a) => { counts.decodes++; return v.apply(target, a); };
            if (prop === "addToBatch") return (...a) => { counts.tokens += a[2].length; return v.apply(target, a); };
            return v.bind(target);
        }
    });
    try {
        context._ctx = proxy;
        counts.enabled = context._ctx === proxy;
    } catch {
        // not replaceable in this version: no check
    }
    return counts;
}

// One PP + TG run over the context's N sequences; returns seconds for each phase and the decode counts of TG.
async function run(context, sequences, counts, tg) {
    await Promise.all(sequences.map((s) => s.clearHistory()));
    const gens = sequences.map((s) =>
        s.evaluate(prompt(opt.pp), {temperature: 0, yieldEogToken: true})[Symbol.asyncIterator]());
    const step = async () => {
        const rs = await Promise.all(gens.map((g) => g.next()));
        if (rs.some((r) => r.done)) throw new Error("a sequence stopped generating (context full?)");
    };
    let t0 = process.hrtime.bigint();
    await step(); // all prompts, one batch, and each sequence's first sampled token
    const ppSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    counts.decodes = 0;
    counts.tokens = 0;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < tg; i++) await step(); // each decodes the previous token and samples the next
    const tgSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const tgCounts = {decodes: counts.decodes, tokens: counts.tokens};
    await Promise.all(gens.map((g) => g.return?.()));
    return {ppSeconds, tgSeconds, ...tgCounts};
}

const results = {};
const rows = [];
for (const n of opt.parallel) {
    const context = await model.createContext({
        contextSize: opt.pp + opt.tg + 8, sequences: n, batchSize: Math.max(n * opt.pp, n), threads: opt.threads,
        flashAttention: opt.fa === "on" ? true : opt.fa === "off" ? false : "auto",
        failedCreationRemedy: false
    });
    const sequences = Array.from({length: n}, () => context.getSequence());
    const counts = countDecodes(context);
    await run(context, sequences, counts, Math.min(opt.tg, 8)); // warm-up
    let pp = 0, tg = 0, decodes = 0, tokens = 0;
    for (let r = 0; r < opt.reps; r++) {
        const x = await run(context, sequences, counts, opt.tg);
        pp += x.ppSeconds / opt.reps;
        tg += x.tgSeconds / opt.reps;
        decodes += x.decodes;
        tokens += x.tokens;
    }
    const tokensPerDecode = counts.enabled && decodes > 0 ? tokens / decodes : null;
    results[String(n)] = {
        aggregate: n * opt.tg / tg, per_stream: opt.tg / tg, pp: n * opt.pp / pp, tokens_per_decode: tokensPerDecode
    };
    rows.push({n, tPP: pp, tTG: tg, ...results[String(n)]});
    if (tokensPerDecode != null && tokensPerDecode < n)
        console.error(`warning: with ${n} sequences TG averaged ${tokensPerDecode.toFixed(2)} tokens per decode, `
            + `not ${n}: the streams were not batched together`);
    for (const s of sequences) s.dispose();
    await context.dispose();
}

const info = {
    tool: "node-llama-cpp",
    nodeLlamaCppVersion: JSON.parse((await import("node:fs")).readFileSync(
        new URL("../package.json", import.meta.resolve("node-llama-cpp")), "utf8")).version,
    llamaCppRelease: llama.llamaCppRelease.release,
    model: opt.model, threads: opt.threads, flashAttention: opt.fa, pp: opt.pp, tg: opt.tg, reps: opt.reps
};
if (opt.json) {
    console.log(JSON.stringify({...info, results}));
} else {
    console.log(`node-llama-cpp ${info.nodeLlamaCppVersion} | llama.cpp ${info.llamaCppRelease} | threads=${opt.threads}`
        + ` | fa=${opt.fa} | pp=${opt.pp} tg=${opt.tg} reps=${opt.reps} | ${opt.model}`);
    console.log("|   B |   T_PP s |   S_PP t/s |   T_TG s |   S_TG t/s | per stream t/s | tokens/decode |");
    console.log("|----:|---------:|-----------:|---------:|-----------:|---------------:|--------------:|");
    for (const r of rows)
        console.log(`| ${String(r.n).padStart(3)} | ${r.tPP.toFixed(3).padStart(8)} | ${r.pp.toFixed(2).padStart(10)} `
            + `| ${r.tTG.toFixed(3).padStart(8)} | ${r.aggregate.toFixed(2).padStart(10)} | ${r.per_stream.toFixed(2).padStart(14)} `
            + `| ${(r.tokens_per_decode == null ? "n/a" : r.tokens_per_decode.toFixed(2)).padStart(13)} |`);
}
await model.dispose();
await llama.dispose();
