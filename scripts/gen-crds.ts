/**
 * `npm run gen:crds`: writes crds/*.yaml from the zod schemas in src/api. Filled in by the
 * API issue; until then there are no CRDs to write.
 */
console.log('no CRDs defined yet');
