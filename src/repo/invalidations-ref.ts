/** The ref whose tree holds invalidation records; it travels with push and pull like any ref. */
export const INVALIDATIONS_REF = 'invalidations'
