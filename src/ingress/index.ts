/** Webhook ingress: verify, publish with a message id, answer after the PubAck. */
export { HookTable, type Hook, type HookLookup, type IntegrationLookup, type IntegrationObject } from './hooks.ts';
export { IngressMetrics, type Outcome } from './metrics.ts';
export { WebhookIngress, type WebhookIngressOptions, type WebhookPublisher } from './server.ts';
export { deliveryId, signingKeys, verifySignature, type RequestHeaders, type Verdict } from './verify.ts';
