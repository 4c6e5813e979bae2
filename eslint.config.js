// Flat config shared by every workspace (each runs `eslint src` and ESLint finds this file upward).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/*.d.ts', '**/json-schema/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read configuration in config.ts only.' },
      ],
    },
  },
  {
    // Config modules and entry points are the only places allowed to read the environment.
    files: ['**/config.ts', '**/main.ts', '**/*.test.ts', '**/test/**', '**/scripts/**', '**/devkit/src/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
