// Files that Bun imports as text (`with { type: "text" }`) and embeds in the compiled binary.
declare module "*.yaml" {
  const text: string;
  export default text;
}
// Service templates from scripts/service/, embedded for `memproxy service install`.
declare module "*.service" {
  const text: string;
  export default text;
}
declare module "*.plist" {
  const text: string;
  export default text;
}
// The status page (src/ui/), embedded for src/ui.ts.
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*.svg" {
  const text: string;
  export default text;
}
// Named in full: a .js file resolves to itself, so a wildcard on the extension alone would not apply.
// (*.html is declared by bun-types as an HTMLBundle, which a pattern here cannot override: see src/ui.ts.)
declare module "*/ui/app.js" {
  const text: string;
  export default text;
}
