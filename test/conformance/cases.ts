import { fileURLToPath } from "node:url";

/**
 * The conformance folders of ../shared/conformance and the cases each had when the
 * cross-backend suites were written: every one must still be there (a missing folder or
 * case fails, never skips). Shared by test/conformance/every-backend.test.ts and the
 * browser suite (test/browser/conformance.test.ts).
 */
export const CONFORMANCE_DIR = fileURLToPath(
  new URL("../../../shared/conformance/", import.meta.url),
);

export interface CaseFolder {
  /** "" for the top level, else the subfolder's name. */
  readonly folder: string;
  readonly known: readonly string[];
}

export const CASE_FOLDERS: readonly CaseFolder[] = [
  {
    folder: "",
    known: [
      "a1_selfattn_dense_rpb",
      "a2_selfattn_dense_rpb_tokenidx",
      "b1_selfattn_sparse_rpb_div",
      "b2_selfattn_sparse_rpb_pad",
      "b3_selfattn_sparse_norpb_pad",
      "b4_selfattn_sparse_norpb_div",
      "b5_selfattn_sparse_rpb_7x7_pad",
      "c1_layer_sparse_keep07",
      "c2_layer_sparse_keep07_pad_tokenidx",
      "d1_encoder4_drop12_keep07",
      "e1_bertlayer_xattn_keep01",
      "f1_layer_full_768",
      "g1_token_order",
      "h1_model_pixels_sparse",
    ],
  },
  {
    folder: "video-text",
    known: [
      "i1_text_encoder_fusion2",
      "j1_fusion_itm_xkeep01",
      "j2_fusion_itm_keep1",
      "k1_retrieval_pixels",
      "t1_tokenizer_wordpiece",
    ],
  },
];

/**
 * The reference diagnostics sprig's graphs do not produce (NOT_PRODUCED in
 * src/api/conformance.ts, README "Conformance"): the only expected tensors a case may skip.
 */
export const DOCUMENTED_SKIP = /^expected\.(sparse_attention_probs|sim_i2t_temp): /;
