// Checks of the scripts in this directory against facts they must reproduce (run: `node --test` here, after
// `npm i`; not part of CI, which must not depend on Node). Uses ../../../shared like the Java tests and skips
// without it.
//   - perplexity.mjs reproduces llama-perplexity's own figures in ../shared/reference/ppl-garden.json, chunk by chunk
//   - pad-heads.mjs leaves the model's function unchanged: same F16 perplexity with heads padded to 32 and to 64
//   - batched-bench.mjs really puts the N sequences' tokens into one decode per step
//   - bad option values give exit code 2 and one line naming the option

import {test} from "node:test";
import assert from "node:assert/strict";
import {execFileSync, spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = path.resolve(here, "../../../shared");
const model = path.join(shared, "models/stories260K.gguf");
const text = path.join(shared, "reference/ppl-garden.txt");
const skip = fs.existsSync(model) ? false : `no ${shared} (the shared test data): skipped`;

const run = (script, ...args) => JSON.parse(execFileSync(process.execPath, [path.join(here, script), ...args, "--json"],
    {encoding: "utf8", stdio: ["ignore", "pipe", "pipe"]}).trim().split("\n").pop());

test("perplexity.mjs reproduces llama-perplexity's figures for ppl-garden.txt", {skip}, () => {
    const reference = JSON.parse(fs.readFileSync(path.join(shared, "reference/ppl-garden.json"), "utf8"));
    for (const r of reference.runs) {
        const ours = run("perplexity.mjs", model, text, "-c", String(r.n_ctx), "-fa", "off");
        assert.equal(ours.chunks, r.chunks);
        assert.equal(ours.tokens, 986); // llamaj's tokenizer gives the same count (`llama perplexity` prints it)
        assert.ok(Math.abs(ours.ppl - r.final_ppl) < 6e-5, `n_ctx ${r.n_ctx}: ${ours.ppl} vs ${r.final_ppl}`);
        (r.per_chunk ?? []).forEach((p, i) =>
            assert.ok(Math.abs(ours.per_chunk[i] - p) < 6e-5, `chunk ${i + 1}: ${ours.per_chunk[i]} vs ${p}`));
    }
});

test("pad-heads.mjs keeps the function: the same F16 perplexity with heads of 32 and 64", {skip}, () => {
    const reference = run("perplexity.mjs", model, text, "-c", "128");
    const base = reference.ppl;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pad-heads-"));
    try {
        for (const head of ["32", "64"]) {
            const out = path.join(dir, `hd${head}.gguf`);
            execFileSync(process.execPath, [path.join(here, "pad-heads.mjs"), model, out, "--head", head],
                {stdio: "ignore"});
            const padded = run("perplexity.mjs", out, text, "-c", "128").ppl;
            assert.ok(Math.abs(padded / base - 1) < 2e-4, `heads of ${head}: ${padded} vs ${base}`);
            // and the padding really lets llama.cpp quantize the cache (it refuses heads of 8)
            const q = run("perplexity.mjs", out, text, "-c", "128", "--chunks", "2", "-ctk", "q8_0", "-ctv", "q8_0");
            const after2 = reference.per_chunk[1];
            assert.ok(Math.abs(q.ppl / after2 - 1) < 0.05, `q8_0 cache, heads of ${head}: ${q.ppl} vs ${after2}`);
        }
    } finally {
        fs.rmSync(dir, {recursive: true, force: true});
    }
});

test("batched-bench.mjs decodes the N streams together", {skip}, () => {
    const r = run("batched-bench.mjs", model, "--parallel", "1,3", "--pp", "8", "--tg", "4");
    for (const n of ["1", "3"]) {
        assert.equal(r.results[n].tokens_per_decode, Number(n));
        assert.ok(r.results[n].aggregate > 0 && r.results[n].per_stream > 0);
        assert.ok(Math.abs(r.results[n].aggregate / r.results[n].per_stream - Number(n)) < 1e-9);
    }
});

test("bad option values are one line and exit code 2", {skip}, () => {
    const cases = [
        ["perplexity.mjs", [model, text, "-ctk", "q5_0"], "-ctk"],
        ["perplexity.mjs", [model, text, "-c", "2"], "-c"],
        ["perplexity.mjs", [model, text, "--rotation", "on"], "--rotation"],
        ["perplexity.mjs", [model, text, "-fa", "yes"], "-fa"],
        ["perplexity.mjs", [model, text, "-c", "512"], "needs at least 1024"],
        ["perplexity.mjs", [model, text, "-ctk", "q8_0"], "does not divide n_embd_head_k=8"],
        ["batched-bench.mjs", [model, "--parallel", "1,0"], "--parallel"],
        ["batched-bench.mjs", [model, "--tg", "x"], "--tg"],
        ["batched-bench.mjs", [text], "cannot load"]
    ];
    for (const [script, args, mention] of cases) {
        const r = spawnSync(process.execPath, [path.join(here, script), ...args], {encoding: "utf8"});
        assert.equal(r.status, 2, `${script} ${args.join(" ")}: exit ${r.status}, ${r.stderr}`);
        const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("[node-llama-cpp]"));
        assert.equal(lines.length, 1, r.stderr);
        assert.ok(lines[0].includes(mention), lines[0]);
    }
});
