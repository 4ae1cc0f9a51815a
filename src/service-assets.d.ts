// The environment-file template from scripts/service/, imported as text and embedded for `memproxy service install`.
declare module "*.env" {
  const text: string;
  export default text;
}
