/** Child-process entry: `node --import tsx child.ts <module> <json args>` → process.send({ ok, result }). */
const [, , moduleName, argsJson] = process.argv;
try {
  const mod = (await import(`./${moduleName}.ts`)) as { run(args: unknown): Promise<unknown> };
  const result = await mod.run(JSON.parse(argsJson ?? '{}'));
  process.send!({ ok: true, result }, () => process.exit(0));
} catch (error) {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.send!({ ok: false, error: message }, () => process.exit(1));
}
