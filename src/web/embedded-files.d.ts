// `import x from "...css|js" with { type: "text" }`: Bun inlines the file's text (also into compiled binaries).
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "htmx.org/dist/htmx.min.js" {
  const text: string;
  export default text;
}
declare module "*/public/app.js" {
  const text: string;
  export default text;
}
