import type { Summary } from './stats.js';

export interface Row {
  section: string;
  scenario: string;
  metric: string;
  summary?: Summary;
  /** Free text beside the figure: a ratio, a parameter, a failure. */
  note?: string;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  node: string;
  kafkajs: string;
  chdb: string;
  clickhouseClient: string;
  clickhouseEngine?: string;
  date: string;
}

const fmt = (v: number): string => {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (a >= 100) return Math.round(v).toLocaleString('en-US');
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
};

export function ratioText(label: string, r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}× ${label}` : `n/a vs ${label}`;
}

export function markdown(title: string, machine: Machine, meta: Record<string, unknown>, rows: Row[], errors: string[]): string {
  const lines: string[] = [];
  lines.push(`# ${title}`, '');
  lines.push(
    `${machine.date} · ${machine.cpu} · ${machine.cores} cores · ${machine.memoryGb.toFixed(1)} GB · ${machine.os} · Node ${machine.node} · kafkajs ${machine.kafkajs} · chdb ${machine.chdb}` +
      `${machine.clickhouseEngine ? ` (ClickHouse ${machine.clickhouseEngine})` : ''} · @clickhouse/client ${machine.clickhouseClient}`,
    '',
  );
  lines.push(Object.entries(meta).map(([k, v]) => `**${k}**: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · '), '');
  lines.push('| section | scenario | metric | min | median | max | n | note |', '| --- | --- | --- | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    const s = r.summary;
    lines.push(`| ${r.section} | ${r.scenario} | ${r.metric} | ${s ? fmt(s.min) : ''} | ${s ? fmt(s.median) : ''} | ${s ? fmt(s.max) : ''} | ${s ? s.n : ''} | ${r.note ?? ''} |`);
  }
  if (errors.length > 0) {
    lines.push('', '## Failures', '');
    for (const e of errors) lines.push(`- ${e.split('\n')[0]}`);
  }
  return `${lines.join('\n')}\n`;
}
