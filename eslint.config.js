// Lint rules that keep async code honest: no promise left floating, type-only imports marked.
import tseslint from 'typescript-eslint';
// isotrace's own rule, from the built package (`npm run build` first; `npm test` does).
import isotrace from 'isotrace/eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.cache/', 'coverage/'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The examples are what users copy: no request data in module-level state (docs/eslint.md).
  { files: ['examples/**/*.ts'], ...isotrace.configs.recommended },
);
