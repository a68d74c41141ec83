// node embed.mjs MODEL.gguf INPUTS.json BATCH -> one JSON array per input: llama.cpp's raw embedding (no normalization)
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";
process.env.NODE_LLAMA_CPP_GPU = "false";
const [modelPath, inputsPath, batch] = process.argv.slice(2);
const fs = await import("node:fs");
const {getLlama, LlamaLogLevel} = await import("node-llama-cpp");
const llama = await getLlama({gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
    progressLogs: false, maxThreads: 2, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createEmbeddingContext({contextSize: 512, batchSize: Number(batch), threads: 2});
const inputs = JSON.parse(fs.readFileSync(inputsPath, "utf8"));
const out = [];
for (const ids of inputs) {
    const e = await ctx.getEmbeddingFor(ids);
    out.push(Array.from(e.vector));
}
console.log(JSON.stringify(out));
process.exit(0);
