export { ApiKey, KafkaErrorCode, buildMockKafka, startMockKafka } from './mock-kafka.js';
export type { MockKafka, MockKafkaOptions } from './mock-kafka.js';
export { startTestKafka } from './test-kafka.js';
export type { KafkaMode, TestKafka } from './test-kafka.js';
export { dockerAvailable } from './docker.js';
export { startFaultProxy } from './fault-proxy.js';
export type { FaultMode, FaultProxy, FaultProxyOptions, FaultProxyStats } from './fault-proxy.js';
