/**
 * Deterministic benchmark inputs in [-1, 1) from a linear congruential generator (fast for large arrays): the
 * same generator the kernel explorer's cases use, so a bench row and an explorer run see the same numbers.
 */
export { randomValues as randomData } from '../../src/web/kernel-case.js';
