import { describe, expect, it } from 'vitest';
import { median, percentile, perSecond, ratio, summarize } from './stats.js';

describe('stats', () => {
  it('computes percentiles with linear interpolation', () => {
    const v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(v, 0)).toBe(1);
    expect(percentile(v, 100)).toBe(10);
    expect(percentile(v, 50)).toBe(5.5);
    expect(percentile(v, 99)).toBeCloseTo(9.91, 10);
    expect(percentile([42], 99)).toBe(42);
    expect(percentile([], 50)).toBeNaN();
  });

  it('does not depend on input order and does not mutate it', () => {
    const v = [5, 1, 4, 2, 3];
    expect(median(v)).toBe(3);
    expect(v).toEqual([5, 1, 4, 2, 3]);
  });

  it('summarizes min/median/max', () => {
    expect(summarize([3, 1, 2])).toEqual({ n: 3, min: 1, median: 2, max: 3 });
    expect(summarize([4, 1])).toEqual({ n: 2, min: 1, median: 2.5, max: 4 });
    expect(summarize([]).n).toBe(0);
  });

  it('rejects bad input', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => summarize([1, Number.NaN])).toThrow(RangeError);
  });

  it('computes ratios and rates', () => {
    expect(ratio(summarize([2, 4, 6]), summarize([8]))).toBe(0.5);
    expect(ratio(summarize([1]), summarize([0]))).toBeNaN();
    expect(perSecond(500, 250)).toBe(2000);
  });
});
