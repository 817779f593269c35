import assert from "node:assert/strict";
import type { ClientFrame } from "../lib/parrot/frame.ts";
import { ClientFrameDecoder, type DecoderOptions } from "../lib/parrot/frame_decoder.ts";
import {
  type FuzzedDecoder,
  rangedClientDecoder,
  runDecoderFuzz,
} from "../scripts/torture/decoder_fuzz.ts";

/** A real client decoder whose pushes go through `push`. */
function wrapped(
  options: DecoderOptions,
  push: (decoder: ClientFrameDecoder, chunk: Uint8Array) => ReturnType<ClientFrameDecoder["push"]>,
): FuzzedDecoder<ClientFrame> {
  const decoder = new ClientFrameDecoder(options);
  return {
    push: (chunk) => push(decoder, chunk),
    get pending() {
      return decoder.pending;
    },
    get bufferedBytes() {
      return decoder.bufferedBytes;
    },
  };
}

Deno.test("runDecoderFuzz() finds no failing property in the frame decoders", () => {
  // A random seed each run; a failure message quotes it and the counterexample.
  const result = runDecoderFuzz({ numRuns: 500 });
  assert.deepEqual(result.failures, []);
  assert.equal(result.properties, 15);
  assert.equal(result.runs, 7500);
});

Deno.test("runDecoderFuzz() reports a broken property", () => {
  // Loses the last byte of every non-empty MSG payload.
  const result = runDecoderFuzz({
    numRuns: 100,
    seed: 42,
    createClientDecoder: (options) =>
      wrapped(options, (decoder, chunk) => {
        const result = decoder.push(chunk);
        const frames = result.frames.map((frame) =>
          frame.type === "msg" && frame.payload.length > 0
            ? { ...frame, payload: frame.payload.subarray(0, -1) }
            : frame
        );
        return { ...result, frames };
      }),
  });
  for (const name of ["split into random chunks", "pushed in two halves"]) {
    const failure = result.failures.find((failure) =>
      failure.startsWith(`ClientFrameDecoder decodes valid frames ${name}`)
    );
    assert.ok(failure !== undefined, name);
    assert.match(failure, /expected msg/);
    assert.match(failure, /seed: 42, path: "[\d:]+"/);
    assert.match(failure, /counterexample: .*stream "MSG /);
  }
  assert.ok(result.runs < 15 * 100);
});

Deno.test("runDecoderFuzz() reports a decoder that throws instead of throwing", () => {
  const result = runDecoderFuzz({
    numRuns: 100,
    seed: 7,
    createClientDecoder: (options) =>
      wrapped(options, (decoder, chunk) => {
        if (chunk.includes(0)) throw new TypeError("NUL byte");
        return decoder.push(chunk);
      }),
  });
  const client = result.failures.filter((failure) => failure.startsWith("ClientFrameDecoder "));
  assert.equal(client.length, 5);
  for (const failure of client) assert.match(failure, /push\(\) threw at byte \d+: TypeError: NUL/);
});

Deno.test("runDecoderFuzz() reports a broken pushRanges(), the server's path", () => {
  // Loses the last byte of every non-empty payload range (the MSG fast path's output).
  const result = runDecoderFuzz({
    numRuns: 100,
    seed: 42,
    createRangedClientDecoder: (options) => {
      const decoder = new ClientFrameDecoder(options);
      return rangedClientDecoder({
        pushRanges(chunk, into) {
          const from = into.rangeCount;
          const error = decoder.pushRanges(chunk, into);
          for (let i = from; i < into.rangeCount; i += 2) {
            if (into.ranges[i + 1] > into.ranges[i]) into.ranges[i + 1]--;
          }
          return error;
        },
        get pending() {
          return decoder.pending;
        },
        get bufferedBytes() {
          return decoder.bufferedBytes;
        },
      });
    },
  });
  const ranged = result.failures.filter((failure) =>
    failure.startsWith("ClientFrameDecoder.pushRanges() decodes valid frames")
  );
  assert.equal(ranged.length, 2, result.failures.join("\n"));
  for (const failure of ranged) assert.match(failure, /expected msg/);
  assert.equal(
    result.failures.filter((failure) => failure.startsWith("ClientFrameDecoder ")).length,
    0,
    "push() is not affected",
  );
});
