/**
 * The part of jsfive (a pure-JavaScript HDF5 reader, npm `jsfive`, no types of its own) that keras-h5.ts uses.
 * jsfive throws strings as well as Errors, so callers catch `unknown`.
 */
declare module 'jsfive' {
  export class Group {
    readonly name: string;
    readonly keys: string[];
    readonly attrs: Record<string, unknown>;
    /** A member by path; throws when it does not exist. */
    get(path: string): Group | Dataset | null;
  }
  export class File extends Group {
    constructor(buffer: ArrayBuffer, filename?: string);
  }
  export class Dataset {
    readonly name: string;
    readonly shape: number[];
    /** e.g. '<f4', '>f8', '<i4'; an array for compound, reference and variable-length types. */
    readonly dtype: string | unknown[];
    /** Reads the whole dataset, row-major, as plain numbers. */
    readonly value: ArrayLike<number>;
    /** jsfive's internals, which keras-h5.ts uses to check sizes before reading and to read contiguous data fast. */
    readonly _dataobjects: {
      readonly chunks: number[] | null;
      readonly filter_pipeline: unknown[] | null;
      /** The object header messages of a type (8: data layout), each with its 'offset_to_message'. */
      find_msg_type(type: number): Array<Map<string, number>>;
      /** From a data layout message: [version, dims, layout class (0 compact, 1 contiguous, 2 chunked), offset of its properties]. */
      _get_data_message_properties(offset: number): [number, number, number, number];
    };
  }
}
