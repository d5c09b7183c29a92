// Preloaded (node --require) into a worker process to skew its clock by CLOCK_OFFSET_MS.
const offset = Number(process.env.CLOCK_OFFSET_MS || 0);
const realNow = Date.now.bind(Date);
Date.now = () => realNow() + offset;
