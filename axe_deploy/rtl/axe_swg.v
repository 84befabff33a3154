// axe_swg: sliding-window generator (im2col in hardware) for a K x K convolution.
//
// Stream in:  an H x W x C image, channels-last, pixel by pixel in row-major order, SIMD
//             channels a beat (C/SIMD beats a pixel).
// Stream out: for each output pixel (oh, ow) in row-major order, the window in
//             (kh, kw, c) order, SIMD channels a beat: K*K*C/SIMD beats a pixel.
//             Positions in the PAD-wide border are integer 0 (made here, not stored).
//
// Line buffer of R = K + STRIDE image rows, used as a ring of row slots: the writer fills
// row slots while fewer than R are in use; the reader emits output row oh once the input
// rows it covers are complete (for the last output row, the rest of the image, so that
// rows no window uses are consumed too) and then frees the rows output row oh+1 does not
// need. R >= K + STRIDE - 1 rows are ever needed at once, so one slot is always left to
// write ahead. Read data comes from a registered read (block-RAM friendly).
// Requires STRIDE <= K and PAD < K.
`default_nettype none

module axe_swg #(
  parameter integer H = 8,
  parameter integer W = 8,
  parameter integer C = 4,
  parameter integer K = 3,
  parameter integer STRIDE = 1,
  parameter integer PAD = 0,
  parameter integer SIMD = 1,
  parameter integer BITS = 4
) (
  input  wire                 clk,
  input  wire                 rst_n,
  input  wire [SIMD*BITS-1:0] in_data,
  input  wire                 in_valid,
  output wire                 in_ready,
  output wire [SIMD*BITS-1:0] out_data,
  output wire                 out_valid,
  input  wire                 out_ready
);
  localparam integer CF = C / SIMD;
  localparam integer OH = (H + 2*PAD - K) / STRIDE + 1;
  localparam integer OW = (W + 2*PAD - K) / STRIDE + 1;
  localparam integer R = K + STRIDE;
  localparam integer ROW_BEATS = W * CF;
  localparam integer DEPTH = R * ROW_BEATS;
  localparam integer AW = $clog2(DEPTH);
  localparam integer DW = SIMD * BITS;
  // counter widths (at least 1 bit)
  localparam integer CFW = (CF > 1) ? $clog2(CF) : 1;
  localparam integer WW = (W > 1) ? $clog2(W) : 1;
  localparam integer KW = (K > 1) ? $clog2(K) : 1;
  localparam integer OHW = (OH > 1) ? $clog2(OH) : 1;
  localparam integer OWW = (OW > 1) ? $clog2(OW) : 1;
  localparam integer RW = $clog2(R + 1);
  // last values of the counters (the subtraction wraps within the counter's width)
  localparam [CFW-1:0] CF_LAST = CF[CFW-1:0] - 1'b1;
  localparam [WW-1:0]  W_LAST = W[WW-1:0] - 1'b1;
  localparam [KW-1:0]  K_LAST = K[KW-1:0] - 1'b1;
  localparam [OHW-1:0] OH_LAST = OH[OHW-1:0] - 1'b1;
  localparam [OWW-1:0] OW_LAST = OW[OWW-1:0] - 1'b1;
  localparam [RW-1:0]  R_LAST = R[RW-1:0] - 1'b1;
  localparam [RW-1:0]  R_N = R[RW-1:0];
  // signed geometry: wide enough for every row/column index of the padded image and 2R
  localparam integer GMAX = ((H > W) ? H : W) + 2*PAD + 2*R + K + STRIDE;
  localparam integer GW = $clog2(GMAX + 1) + 1;
  localparam integer XW = ((AW > GW) ? AW : GW) + 1;  // address arithmetic, wider than all parts
  localparam signed [GW-1:0] G_0 = 0;
  localparam signed [GW-1:0] G_1 = 1;
  localparam signed [GW-1:0] G_H = H[GW-1:0];
  localparam signed [GW-1:0] G_HM1 = H[GW-1:0] - 1'b1;
  localparam signed [GW-1:0] G_WM1 = W[GW-1:0] - 1'b1;
  localparam signed [GW-1:0] G_KM1 = K[GW-1:0] - 1'b1;
  localparam signed [GW-1:0] G_S = STRIDE[GW-1:0];
  localparam signed [GW-1:0] G_R = R[GW-1:0];
  localparam signed [GW-1:0] G_NPAD = -PAD[GW-1:0];

  reg [DW-1:0] mem [0:DEPTH-1];

  // ---- writer: fills row slots ----
  reg [WW-1:0]  w_col;
  reg [CFW-1:0] w_cf;
  reg [RW-1:0]  w_slot, rows_alloc, rows_done;
  wire row_start = (w_col == {WW{1'b0}}) && (w_cf == {CFW{1'b0}});
  wire row_end = (w_col == W_LAST) && (w_cf == CF_LAST);
  assign in_ready = !row_start || rows_alloc < R_N;
  wire in_fire = in_valid && in_ready;
  /* verilator lint_off UNUSEDSIGNAL */
  wire [XW-1:0] w_full = {{(XW-RW){1'b0}}, w_slot} * ROW_BEATS[XW-1:0]
                       + {{(XW-WW){1'b0}}, w_col} * CF[XW-1:0] + {{(XW-CFW){1'b0}}, w_cf};
  /* verilator lint_on UNUSEDSIGNAL */
  wire [AW-1:0] w_addr = w_full[AW-1:0];

  // ---- reader: walks (oh, ow, kh, kw, cf) ----
  reg [OHW-1:0] oh;
  reg [OWW-1:0] ow;
  reg [KW-1:0]  kh, kw;
  reg [CFW-1:0] cf;
  reg [RW-1:0]  r_base;
  reg           out_valid_r;
  wire en = !out_valid_r || out_ready;
  // Window geometry, signed (rows/columns of the padded image may be negative):
  // top_r/left_r = first input row/column of the current window, kept incrementally.
  reg signed [GW-1:0] top_r, left_r;
  reg signed [GW-1:0] lowest, highest, bottom, need, next_top, next_lowest, ih, iw, slot;
  /* verilator lint_off UNUSEDSIGNAL */
  reg signed [GW-1:0] free_rows;  // at most R: only its low RW bits are used
  /* verilator lint_on UNUSEDSIGNAL */
  reg pad_now;
  reg [AW-1:0] r_addr;
  /* verilator lint_off UNUSEDSIGNAL */
  reg [XW-1:0] r_full;  // the address is < DEPTH: only its low AW bits are used
  /* verilator lint_on UNUSEDSIGNAL */
  reg [RW-1:0] free_n;
  wire last_row = oh == OH_LAST;
  always @* begin
    lowest = (top_r < G_0) ? G_0 : top_r;
    bottom = top_r + G_KM1;
    highest = (bottom > G_HM1) ? G_HM1 : bottom;
    need = last_row ? G_H - lowest : highest - lowest + G_1;
    next_top = top_r + G_S;
    next_lowest = (next_top < G_0) ? G_0 : next_top;
    free_rows = last_row ? G_H - lowest : next_lowest - lowest;
    free_n = free_rows[RW-1:0];
    ih = top_r + $signed({{(GW-KW){1'b0}}, kh});
    iw = left_r + $signed({{(GW-KW){1'b0}}, kw});
    pad_now = ih < G_0 || ih > G_HM1 || iw < G_0 || iw > G_WM1;
    slot = $signed({{(GW-RW){1'b0}}, r_base}) + ih - lowest;
    if (slot >= G_R) slot = slot - G_R;
    // slot < R and iw < W unless padded (then the read is discarded)
    r_full = {{(XW-GW){1'b0}}, slot} * ROW_BEATS[XW-1:0] + {{(XW-GW){1'b0}}, iw} * CF[XW-1:0]
           + {{(XW-CFW){1'b0}}, cf};
    r_addr = r_full[AW-1:0];
  end
  wire ready_rows = $signed({{(GW-RW){1'b0}}, rows_done}) >= need;
  wire issue = en && ready_rows;
  wire row_out_end = (kh == K_LAST) && (kw == K_LAST) && (cf == CF_LAST) && (ow == OW_LAST);
  wire row_done = issue && row_out_end;
  wire [RW-1:0] freed = row_done ? free_n : {RW{1'b0}};
  wire [RW:0] base_sum = {1'b0, r_base} + {1'b0, free_n};  // < 2R: one bit more than a slot

  always @(posedge clk) begin
    if (in_fire) mem[w_addr] <= in_data;
    if (!rst_n) begin
      w_col <= {WW{1'b0}};
      w_cf <= {CFW{1'b0}};
      w_slot <= {RW{1'b0}};
      rows_alloc <= {RW{1'b0}};
      rows_done <= {RW{1'b0}};
      oh <= {OHW{1'b0}};
      ow <= {OWW{1'b0}};
      kh <= {KW{1'b0}};
      kw <= {KW{1'b0}};
      cf <= {CFW{1'b0}};
      r_base <= {RW{1'b0}};
      top_r <= G_NPAD;
      left_r <= G_NPAD;
    end else begin
      if (in_fire) begin
        w_cf <= (w_cf == CF_LAST) ? {CFW{1'b0}} : w_cf + 1'b1;
        if (w_cf == CF_LAST) w_col <= (w_col == W_LAST) ? {WW{1'b0}} : w_col + 1'b1;
        if (row_end) w_slot <= (w_slot == R_LAST) ? {RW{1'b0}} : w_slot + 1'b1;
      end
      rows_alloc <= rows_alloc + {{(RW-1){1'b0}}, in_fire && row_start} - freed;
      rows_done <= rows_done + {{(RW-1){1'b0}}, in_fire && row_end} - freed;
      if (issue) begin
        cf <= (cf == CF_LAST) ? {CFW{1'b0}} : cf + 1'b1;
        if (cf == CF_LAST) begin
          kw <= (kw == K_LAST) ? {KW{1'b0}} : kw + 1'b1;
          if (kw == K_LAST) begin
            kh <= (kh == K_LAST) ? {KW{1'b0}} : kh + 1'b1;
            if (kh == K_LAST) begin
              ow <= (ow == OW_LAST) ? {OWW{1'b0}} : ow + 1'b1;
              left_r <= (ow == OW_LAST) ? G_NPAD : left_r + G_S;
            end
          end
        end
        if (row_out_end) begin
          oh <= last_row ? {OHW{1'b0}} : oh + 1'b1;
          top_r <= last_row ? G_NPAD : next_top;
          r_base <= (base_sum >= {1'b0, R_N}) ? base_sum[RW-1:0] - R_N : base_sum[RW-1:0];
        end
      end
    end
  end

  reg [DW-1:0] rd_q;
  reg pad_q;
  always @(posedge clk) begin
    if (!rst_n) out_valid_r <= 1'b0;
    else if (en) out_valid_r <= issue;
    if (issue) begin
      rd_q <= mem[r_addr];
      pad_q <= pad_now;
    end
  end
  assign out_data = pad_q ? {DW{1'b0}} : rd_q;
  assign out_valid = out_valid_r;
endmodule

`default_nettype wire
