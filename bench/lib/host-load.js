// How busy the machine was with other work than the benchmark's own processes while it measured:
// the CPU all processes used (/proc/stat) less what `pids` used (/proc/<pid>/stat), in cores. On a
// shared 2-core machine a run with another's tests beside it is not comparable with a quiet one.
const fs = require('node:fs');

/** Busy jiffies of the whole machine (everything but idle and iowait). */
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return user + nice + system + irq + softirq + steal;
}

/** utime + stime of a process and its reaped children, 0 once it is gone. */
function processTicks(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** Starts counting; the returned function says how many cores other processes kept busy meanwhile. */
function otherLoad(pids) {
  const t0 = Date.now();
  const busy0 = machineBusy();
  const own0 = pids.reduce((s, p) => s + processTicks(p), 0);
  return () => {
    const seconds = (Date.now() - t0) / 1000;
    const other = machineBusy() - busy0 - (pids.reduce((s, p) => s + processTicks(p), 0) - own0);
    // Jiffies are 1/100 s here (USER_HZ).
    return Math.max(0, Math.round((other / 100 / Math.max(0.001, seconds)) * 100) / 100);
  };
}

module.exports = { otherLoad };
