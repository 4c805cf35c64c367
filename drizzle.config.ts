// drizzle-kit config: `node_modules/.bin/drizzle-kit generate` writes SQL migrations from src/store/schema.ts.
// The migrations are embedded in the binary (src/store/migrations/index.ts), not read at run time.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./src/store/schema.ts",
  out: "./src/store/migrations",
});
