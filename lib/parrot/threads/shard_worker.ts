/**
 * The entry of a shard's Worker: one shard (`shard.ts`) that talks to the starting
 * thread through `self`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { serveShard } from "./shard.ts";

serveShard(self);
