// Preloaded with NODE_OPTIONS=--import (Node 20 refuses --cpu-prof in NODE_OPTIONS): profiles the
// whole process with the inspector and writes BENCH_CPU_PROF_FILE when it exits.
import { writeFileSync } from 'node:fs';
import inspector from 'node:inspector';

const file = process.env.BENCH_CPU_PROF_FILE;
if (file) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // Same-thread inspector sessions dispatch synchronously, so this completes inside 'exit'.
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(file, JSON.stringify(result.profile));
    });
  });
}
