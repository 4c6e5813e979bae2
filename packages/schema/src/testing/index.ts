export { engagementEntryArbitrary, jsonValueArbitrary, opportunityArbitrary, webhookArbitrary } from './arbitraries.js';
export { completedSampleEvent } from './samples.js';
