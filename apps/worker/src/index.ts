export { WorkerPool, type WorkerPoolOptions } from './pool';
export { createProcessor, RetryLater, type PipelineDeps } from './pipeline';
