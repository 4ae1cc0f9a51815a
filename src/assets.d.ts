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
