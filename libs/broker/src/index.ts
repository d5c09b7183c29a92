export * from './keys';
export * from './job';
export * from './records';
export * from './broker';
export * from './waiter';
export * from './presence';
export * from './submission';
export {
  ClaimCode,
  FinishCode,
  START_MISSING,
  decodeClaim,
  decodeFinish,
  decodeStart,
  type ClaimOutcome,
  type FinishOutcome,
  type Started,
} from './scripts';
