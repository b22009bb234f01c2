/**
 * Every kernel takes its parameters in one uniform struct at @group(0) @binding(0).
 *
 * This builder writes fields in declaration order with WGSL's uniform layout rules for the types we use:
 * 4-byte scalars (u32, i32, f32) packed tightly, and vec4<u32>/vec4<f32> aligned to 16 bytes. Shapes of up
 * to 8 dimensions travel as two vec4<u32>. The struct size is rounded up to 16 bytes.
 *
 *   struct Params { n: u32, alpha: f32, shape: array<vec4<u32>, 2> }
 *   new Uniforms().u32(n).f32(alpha).vec4u(shape8.slice(0, 4)).vec4u(shape8.slice(4))
 */
export class Uniforms {
  private words: number[] = [];
  private types: Array<'u' | 'i' | 'f'> = [];

  u32(v: number): this {
    return this.push(v >>> 0, 'u');
  }
  i32(v: number): this {
    return this.push(v | 0, 'i');
  }
  f32(v: number): this {
    return this.push(v, 'f');
  }
  vec4u(v: ArrayLike<number>): this {
    this.align(4);
    for (let i = 0; i < 4; i++) this.push((v[i] ?? 0) >>> 0, 'u');
    return this;
  }
  vec4f(v: ArrayLike<number>): this {
    this.align(4);
    for (let i = 0; i < 4; i++) this.push(v[i] ?? 0, 'f');
    return this;
  }
  /** Up to 8 u32 values as array<vec4<u32>, 2>; unused slots hold `fill`. */
  dims8(v: ArrayLike<number>, fill = 1): this {
    if (v.length > 8) throw new Error(`Uniforms.dims8: at most 8 dims, got ${v.length}`);
    const a = Array.from({ length: 8 }, (_, i) => (i < v.length ? v[i]! : fill));
    return this.vec4u(a.slice(0, 4)).vec4u(a.slice(4));
  }

  private align(words: number): void {
    while (this.words.length % words !== 0) this.push(0, 'u');
  }
  private push(v: number, t: 'u' | 'i' | 'f'): this {
    this.words.push(v);
    this.types.push(t);
    return this;
  }

  get byteLength(): number {
    return Math.ceil(this.words.length / 4) * 16 || 16;
  }

  writeTo(view: DataView, byteOffset: number): void {
    for (let i = 0; i < this.words.length; i++) {
      const o = byteOffset + i * 4;
      const t = this.types[i];
      if (t === 'f') view.setFloat32(o, this.words[i]!, true);
      else if (t === 'i') view.setInt32(o, this.words[i]!, true);
      else view.setUint32(o, this.words[i]!, true);
    }
  }
}
