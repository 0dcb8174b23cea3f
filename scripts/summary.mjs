// Prints the test run's closing line, "N passed, N failed, N skipped", from vitest's JSON report.
import { existsSync, readFileSync } from 'node:fs'

const file = new URL('../.test-results.json', import.meta.url)
if (!existsSync(file)) {
  console.log('0 passed, 1 failed (vitest wrote no report)')
  process.exit(0)
}
const report = JSON.parse(readFileSync(file, 'utf8'))
const skipped = report.numPendingTests + report.numTodoTests
// Suites that failed to load count as failures too.
const failed =
  report.numFailedTests + (report.numFailedTestSuites > 0 && report.numFailedTests === 0 ? report.numFailedTestSuites : 0)
console.log(`${report.numPassedTests} passed, ${failed} failed, ${skipped} skipped`)
