/**
 * A child process for the history's kill -9 test (history_test.ts): records messages
 * `m<i>` from `c<i % 7>` through `openHistory()` as fast as it can, and prints
 * `flushed <n>` each time the first n are stored, until it is killed.
 *
 * @module
 */

import { openHistory } from "../history.ts";

const encoder = new TextEncoder();
const writer = await openHistory(Deno.args[0], { flushMs: 10 });
let i = 0;
for (;;) {
  for (let k = 0; k < 500; k++, i++) writer.record(`c${i % 7}`, encoder.encode(`m${i}`));
  await writer.flush();
  console.log(`flushed ${i}`);
}
