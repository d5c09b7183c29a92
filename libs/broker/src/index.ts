export * from './keys';
export * from './job';
export * from './records';
export * from './broker';
export * from './waiter';
export * from './presence';
export * from './submission';
export * from './late-index';
export { PENDING_STATE, parseRecordText, pendingRecordText } from './record-text';
export { FinishCode, decodeFinish, type FinishOutcome } from './scripts';
export {
  DeadLetters,
  DEAD_LETTERS_READ_MAX,
  deadLetterOf,
  isDeadLetter,
  outcomeUnknown,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterLimits,
} from './dead-letters';
