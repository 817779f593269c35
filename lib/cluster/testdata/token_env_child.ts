/**
 * Runs parseClusterFlags() with `--cluster` only and prints the error it throws (or "no
 * error"): run without --allow-env, it must fail closed. For cluster_flags_test.ts.
 *
 * @module
 */

import { parseClusterFlags } from "../cluster_flags.ts";

try {
  parseClusterFlags({ cluster: "127.0.0.1" });
  console.log("no error");
} catch (error) {
  console.log(error instanceof Error ? error.message : String(error));
}
