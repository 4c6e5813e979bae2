export {
  ENGAGEMENT_TYPES,
  clientSchema,
  companySchema,
  completedWebhookSchema,
  engagementEntrySchema,
  engagementSchema,
  engagementTypeSchema,
  failedWebhookSchema,
  isoDateOrDateTime,
  opportunitySchema,
  prospectSchema,
  relationshipSchema,
  resultSchema,
  sharedExperienceSchema,
  summarySchema,
  webhookBaseSchema,
  webhookErrorSchema,
  webhookSchema,
} from './webhook.js';
export type {
  Client,
  ClustrWebhook,
  CompletedWebhook,
  EngagementEntry,
  EngagementType,
  FailedWebhook,
  Opportunity,
  Result,
} from './webhook.js';
export {
  SCHEMA_VERSION,
  engagementHistoryEntrySchema,
  eventIdSchema,
  jobEventSchema,
  opportunityEventSchema,
} from './events.js';
export type { EngagementHistoryEntry, JobEvent, OpportunityEvent } from './events.js';
export { flattenWebhook } from './flatten.js';
export type { FlattenedWebhook } from './flatten.js';
export { formatPath, parseWebhook, toSchemaIssues } from './parse.js';
export type { ParseResult, SchemaIssue } from './parse.js';
export { jobEventId, opportunityEventId, shortHash } from './ids.js';
export { CE_TYPES, DLQ_HEADERS, TOPICS } from './topics.js';
export type { EventKind, TopicRole } from './topics.js';
export { cloudEventHeaders } from './cloudevents.js';
export type { CloudEventAttributes, CloudEventHeaders } from './cloudevents.js';
export { JSON_SCHEMA_GENERATOR, jsonSchemaFiles } from './json-schema.js';
export { makeWebhook } from './generate.js';
export type { MakeWebhookOptions } from './generate.js';
