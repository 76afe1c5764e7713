/**
 * Runs a list of sparkler microVMs one after another and records what each
 * printed and how it ended. Executed where Linux guests can run (inside the
 * emulated-KVM lab on hosts without vmx/svm), so one lab start serves many VMs.
 *   node dist/tests/lab/scenarios.js <scenarios.json> <results.json>
 */
import fs from 'node:fs';
import { runSparkler, type RunOptions, type RunResult } from '../helpers/sparkler_run.js';

export interface Scenario { name: string; run: RunOptions }
export type ScenarioResults = Record<string, RunResult>;

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  process.stderr.write('usage: scenarios.js <scenarios.json> <results.json>\n');
  process.exit(2);
}
const scenarios = JSON.parse(fs.readFileSync(input, 'utf8')) as Scenario[];
// The machine's clock, for tests that check the lab (tools/kvm-lab/run boots it with tsc=reliable).
const clocksource = (() => {
  try {
    return fs.readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8').trim();
  } catch {
    return 'unknown';
  }
})();
process.stderr.write(`scenarios: clocksource ${clocksource}\n`);
const results: ScenarioResults = {};
for (const s of scenarios) {
  process.stderr.write(`scenario ${s.name}: starting\n`);
  results[s.name] = await runSparkler(s.run);
  process.stderr.write(`scenario ${s.name}: exit ${results[s.name]!.code} after ${results[s.name]!.durationMs} ms\n`);
  fs.writeFileSync(output, JSON.stringify(results, null, 1));
}
