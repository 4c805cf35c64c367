// `import sql from "./x.sql" with { type: "text" }`: Bun inlines the file's text (also into compiled binaries).
declare module "*.sql" {
  const text: string;
  export default text;
}
