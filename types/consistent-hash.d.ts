declare module 'consistent-hash' {
  interface ConsistentHashOptions {
    range?: number;
    weight?: number;
    distribution?: 'random' | 'uniform';
  }
  class ConsistentHash {
    constructor(options?: ConsistentHashOptions);
    readonly nodeCount: number;
    add(node: unknown, weight?: number, points?: number[]): this;
    remove(node: unknown): this;
    get(resource: string): unknown;
    get(resource: string, count: number): unknown[];
    getNodes(): unknown[];
  }
  export default ConsistentHash;
}
