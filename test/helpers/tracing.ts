/** The test kit per test file is the package's own: useTestTracing() from 'isotrace/testing' (kept here for older imports). */
export { useTestTracing } from 'isotrace/testing';
