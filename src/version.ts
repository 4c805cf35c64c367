import pkg from "../package.json" with { type: "json" };

// build.ts defines OISP_BUILD_COMMIT; running from source it is "dev".
declare const OISP_BUILD_COMMIT: string | undefined;

export const VERSION: string = pkg.version;
export const COMMIT: string = typeof OISP_BUILD_COMMIT === "string" ? OISP_BUILD_COMMIT : "dev";
