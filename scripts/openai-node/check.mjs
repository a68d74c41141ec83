// Drives a running `llama serve` with the official OpenAI Node SDK, the way integrators' code does, and checks
// what the SDK hands back. Usage: node check.mjs [BASE_URL]   (default http://127.0.0.1:8080/v1)
// Exits non-zero on the first failed check; prints one line per check.
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';

const baseURL = process.argv[2] ?? 'http://127.0.0.1:8080/v1';
const client = new OpenAI({ baseURL, apiKey: process.env.LLAMAJ_API_KEY ?? 'none', maxRetries: 0 });
const model = process.env.LLAMAJ_MODEL ?? 'local';
let failures = 0;

async function check(name, fn) {
  const start = Date.now();
  try {
    const detail = await fn();
    console.log(`ok   ${name} (${Date.now() - start} ms)${detail ? ': ' + detail : ''}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 24 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};

await check('chat.completions.parse with a JSON schema (zod)', async () => {
  // bounded strings: a tiny story model rarely ends a string by itself, and an answer cut by max_tokens cannot parse
  const Character = z.object({ name: z.string().max(16), age: z.number().int(), friends: z.array(z.string().max(16)).max(3) });
  const r = await client.chat.completions.parse({
    model, max_tokens: 300, seed: 1,
    messages: [{ role: 'user', content: 'Describe a character of a story.' }],
    response_format: zodResponseFormat(Character, 'character'),
  });
  const parsed = r.choices[0].message.parsed;
  assert(parsed && typeof parsed.name === 'string' && Number.isInteger(parsed.age), 'parsed: ' + JSON.stringify(parsed));
  return JSON.stringify(parsed);
});

await check('tools round trip with tool_choice required', async () => {
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const first = await client.chat.completions.create({
    model, messages, tools: [weather], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 200, seed: 2,
  });
  const choice = first.choices[0];
  assert(choice.finish_reason === 'tool_calls', 'finish_reason ' + choice.finish_reason);
  const call = choice.message.tool_calls?.[0];
  assert(call && call.function.name === 'get_weather', 'tool_calls: ' + JSON.stringify(choice.message));
  const args = JSON.parse(call.function.arguments);
  assert(typeof args.city === 'string' && ['celsius', 'fahrenheit'].includes(args.unit), 'arguments ' + call.function.arguments);
  messages.push(choice.message);
  messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temperature: 21 }) });
  const second = await client.chat.completions.create({ model, messages, tools: [weather], max_tokens: 30, seed: 3 });
  assert(second.choices[0].message.role === 'assistant', 'second answer: ' + JSON.stringify(second.choices[0]));
  return `${call.function.name}(${call.function.arguments}) then ${JSON.stringify(second.choices[0].message.content)}`;
});

await check('streaming tool-call deltas', async () => {
  const stream = await client.chat.completions.create({
    model, stream: true, tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } },
    messages: [{ role: 'user', content: 'Weather in Oslo?' }], max_tokens: 200, seed: 4,
  });
  const calls = [];
  let deltas = 0;
  let finish;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    for (const d of c.delta.tool_calls ?? []) {
      deltas++;
      calls[d.index] ??= { id: '', name: '', arguments: '' };
      if (d.id) calls[d.index].id = d.id;
      if (d.function?.name) calls[d.index].name += d.function.name;
      if (d.function?.arguments) calls[d.index].arguments += d.function.arguments;
    }
    finish = c.finish_reason ?? finish;
  }
  assert(finish === 'tool_calls', 'finish_reason ' + finish);
  assert(calls.length >= 1 && calls[0].name === 'get_weather' && calls[0].id, 'calls ' + JSON.stringify(calls));
  JSON.parse(calls[0].arguments);
  return `${deltas} deltas, ${calls[0].name}(${calls[0].arguments})`;
});

await check('logprobs and top_logprobs', async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8, logprobs: true, top_logprobs: 3, seed: 5,
  });
  const content = r.choices[0].logprobs?.content;
  assert(Array.isArray(content) && content.length > 0, 'logprobs: ' + JSON.stringify(r.choices[0].logprobs));
  for (const t of content) {
    assert(t.logprob <= 0 && t.top_logprobs.length <= 3 && Array.isArray(t.bytes), 'entry ' + JSON.stringify(t));
  }
  return content.map(t => `${JSON.stringify(t.token)}:${t.logprob.toFixed(2)}`).join(' ');
});

await check('n: 2', async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 16, n: 2, temperature: 1, seed: 6,
  });
  assert(r.choices.length === 2 && r.choices[0].index === 0 && r.choices[1].index === 1, 'choices ' + r.choices.length);
  return r.choices.map(c => JSON.stringify(c.message.content)).join(' | ');
});

await check('embeddings (the SDK asks for base64 and decodes it)', async () => {
  const r = await client.embeddings.create({ model, input: ['a cat sat', 'on the mat'] });
  assert(r.data.length === 2, 'data ' + r.data.length);
  const v = r.data[0].embedding;
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  assert(Math.abs(norm - 1) < 1e-3, 'norm ' + norm);
  return `${v.length} dimensions, norm ${norm.toFixed(4)}, ${r.usage.prompt_tokens} prompt tokens`;
});

await check('responses.create (Responses API)', async () => {
  const r = await client.responses.create({ model, input: 'Once upon a time', max_output_tokens: 16 });
  assert(typeof r.output_text === 'string' && r.output_text.length > 0, 'output_text ' + JSON.stringify(r.output_text));
  return JSON.stringify(r.output_text);
});

await check('responses.create streaming', async () => {
  const stream = await client.responses.create({ model, input: 'Once upon a time', max_output_tokens: 16, stream: true });
  let text = '';
  let completed = false;
  for await (const event of stream) {
    if (event.type === 'response.output_text.delta') text += event.delta;
    // an answer cut by max_output_tokens ends with response.incomplete, as OpenAI's does
    if (event.type === 'response.completed' || event.type === 'response.incomplete') completed = true;
  }
  assert(completed && text.length > 0, `completed ${completed}, text ${JSON.stringify(text)}`);
  return JSON.stringify(text);
});

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
