// Files that Bun imports as text (`with { type: "text" }`) and embeds in the compiled binary.
declare module "*.yaml" {
  const text: string;
  export default text;
}
