export { engagementEntryArbitrary, jsonValueArbitrary, opportunityArbitrary, webhookArbitrary } from './arbitraries.js';
