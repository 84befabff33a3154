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
//
// Timing: a slot holds a row at a power-of-two stride (address {slot, beat in the row}, no
// multiplier), and everything the reader needs is kept in registers, updated incrementally
// a beat at a time (the input row and column, the slot, the beat in the row) or once an
// output row (rows needed, rows to free, the first slot): no path goes through more than
// a few adders.
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
  localparam integer PW = (ROW_BEATS > 1) ? $clog2(ROW_BEATS) : 1;  // beat in a row
  localparam integer SW = (R > 1) ? $clog2(R) : 1;                  // slot
  localparam integer DEPTH = R << PW;
  localparam integer AW = SW + PW;
  localparam integer DW = SIMD * BITS;
  // counter widths (at least 1 bit)
  localparam integer CFW = (CF > 1) ? $clog2(CF) : 1;
  localparam integer KW = (K > 1) ? $clog2(K) : 1;
  localparam integer OHW = (OH > 1) ? $clog2(OH) : 1;
  localparam integer OWW = (OW > 1) ? $clog2(OW) : 1;
  localparam integer RW = $clog2(R + 1);
  // last values of the counters (the subtraction wraps within the counter's width)
  localparam [CFW-1:0] CF_LAST = CF[CFW-1:0] - 1'b1;
  localparam [KW-1:0]  K_LAST = K[KW-1:0] - 1'b1;
  localparam [OHW-1:0] OH_LAST = OH[OHW-1:0] - 1'b1;
  localparam [OWW-1:0] OW_LAST = OW[OWW-1:0] - 1'b1;
  localparam [RW-1:0]  R_N = R[RW-1:0];
  localparam [SW-1:0]  SLOT_LAST = R[SW-1:0] - 1'b1;
  localparam [PW-1:0]  ROW_LAST = ROW_BEATS[PW-1:0] - 1'b1;
  // signed geometry: wide enough for every row/column index of the padded image and 2R
  localparam integer GMAX = ((H > W) ? H : W) + 2*PAD + 2*R + K + STRIDE;
  localparam integer GW = $clog2(GMAX + 1) + 1;
  // a column in beats (iw*CF + cf), signed: padded columns lie outside [0, ROW_BEATS)
  localparam integer BW = $clog2((GMAX + 1) * CF + 1) + 1;
  localparam signed [GW-1:0] G_0 = 0;
  localparam signed [GW-1:0] G_1 = 1;
  localparam signed [GW-1:0] G_H = H[GW-1:0];
  localparam signed [GW-1:0] G_HM1 = H[GW-1:0] - 1'b1;
  localparam signed [GW-1:0] G_WM1 = W[GW-1:0] - 1'b1;
  localparam signed [GW-1:0] G_KM1 = K[GW-1:0] - 1'b1;
  localparam signed [GW-1:0] G_S = STRIDE[GW-1:0];
  localparam signed [GW-1:0] G_NPAD = -PAD[GW-1:0];
  localparam signed [GW-1:0] G_RN = R[GW-1:0];
  localparam signed [BW-1:0] B_1 = 1;
  localparam integer STEP = STRIDE * CF;  // a window's move right, in beats
  localparam integer LEFT0 = -(PAD * CF);  // the first window's left column, in beats
  localparam signed [BW-1:0] B_STEP = STEP[BW-1:0];
  localparam signed [BW-1:0] B_LEFT0 = LEFT0[BW-1:0];

  // Rows output row's window with top row `top` (signed) waits for, and frees when done
  // (the last output row: every row left, so that rows no window uses are consumed too).
  function signed [GW-1:0] floor0(input signed [GW-1:0] v);
    floor0 = (v < G_0) ? G_0 : v;
  endfunction
  function signed [GW-1:0] rows_needed(input signed [GW-1:0] top, input last);
    reg signed [GW-1:0] bottom;
    begin
      bottom = top + G_KM1;
      rows_needed = last ? G_H - floor0(top)
                         : ((bottom > G_HM1) ? G_HM1 : bottom) - floor0(top) + G_1;
    end
  endfunction
  function signed [GW-1:0] rows_freed(input signed [GW-1:0] top, input last);
    rows_freed = last ? G_H - floor0(top) : floor0(top + G_S) - floor0(top);
  endfunction
  // the first input row of output row o's windows
  function signed [GW-1:0] top_of(input integer o);
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [31:0] t;  // fits GW bits
    /* verilator lint_on UNUSEDSIGNAL */
    begin
      t = o * STRIDE - PAD;
      top_of = t[GW-1:0];
    end
  endfunction

  reg [DW-1:0] mem [0:DEPTH-1];

  // ---- writer: fills row slots ----
  reg [PW-1:0]  w_pos;  // beat in the row
  reg [SW-1:0]  w_slot;
  reg [RW-1:0]  rows_alloc, rows_done;
  wire row_start = (w_pos == {PW{1'b0}});
  wire row_end = (w_pos == ROW_LAST);
  assign in_ready = !row_start || rows_alloc < R_N;
  wire in_fire = in_valid && in_ready;
  wire [AW-1:0] w_addr = {w_slot, w_pos};

  // ---- reader: walks (oh, ow, kh, kw, cf) ----
  reg [OHW-1:0] oh;
  reg [OWW-1:0] ow;
  reg [KW-1:0]  kh, kw;
  reg [CFW-1:0] cf;
  reg           out_valid_r;
  wire en = !out_valid_r || out_ready;
  // Per output row: top_r its window's first input row (signed: padded rows are < 0),
  // r_base the slot of its first stored row, need_r/free_r the rows it waits for and
  // frees, slot0_r the slot of its window's row top_r (any slot when padded).
  reg signed [GW-1:0] top_r, need_r;
  /* verilator lint_off UNUSEDSIGNAL */
  reg signed [GW-1:0] free_r;  // at most R: only its low RW bits are used
  /* verilator lint_on UNUSEDSIGNAL */
  reg [SW-1:0] r_base, slot0_r;
  // Per beat: the input row ih_r and column iw_r read, slot_r the row's slot, col_r the
  // beat in the row (iw_r*CF + cf), left_r/lcol_r the window's first column (and beat).
  reg signed [GW-1:0] ih_r, iw_r, left_r;
  reg signed [BW-1:0] col_r, lcol_r;
  reg [SW-1:0] slot_r;
  wire last_row = oh == OH_LAST;
  wire pad_now = ih_r < G_0 || ih_r > G_HM1 || iw_r < G_0 || iw_r > G_WM1;
  /* verilator lint_off UNUSEDSIGNAL */
  wire [BW-1:0] col_bits = col_r;  // < ROW_BEATS unless padded (then the read is discarded)
  /* verilator lint_on UNUSEDSIGNAL */
  wire [AW-1:0] r_addr = {slot_r, col_bits[PW-1:0]};
  wire ready_rows = $signed({{(GW-RW){1'b0}}, rows_done}) >= need_r;
  wire issue = en && ready_rows;
  wire cf_end = cf == CF_LAST;
  wire kw_end = cf_end && kw == K_LAST;
  wire kh_end = kw_end && kh == K_LAST;
  wire row_out_end = kh_end && (ow == OW_LAST);
  wire row_done = issue && row_out_end;
  wire [RW-1:0] freed = row_done ? free_r[RW-1:0] : {RW{1'b0}};

  // The next output row's values (taken at row_done) depend on oh alone: small tables of
  // constants in LUTs (a loop over the rows), not adders on the row's geometry. nx_shift:
  // this row's rows freed plus min(next top row, 0), the next first slot's offset from r_base.
  reg signed [GW-1:0] nx_top, nx_need, nx_free, nx_shift;
  integer o;
  always @* begin
    nx_top = G_NPAD;  // after the last row: row 0
    nx_need = rows_needed(G_NPAD, OH == 1);
    nx_free = rows_freed(G_NPAD, OH == 1);
    nx_shift = rows_freed(top_of(OH - 1), 1'b1) + G_NPAD;
    for (o = 0; o + 1 < OH; o = o + 1)
      if (oh == o[OHW-1:0]) begin
        nx_top = top_of(o + 1);
        nx_need = rows_needed(top_of(o + 1), o + 2 == OH);
        nx_free = rows_freed(top_of(o + 1), o + 2 == OH);
        nx_shift = rows_freed(top_of(o), o + 1 == OH)
                 + ((top_of(o + 1) < G_0) ? top_of(o + 1) : G_0);
      end
  end
  // r_base plus this row's rows freed, and plus nx_shift, wrapped into [0, R)
  wire signed [GW-1:0] r_base_s = $signed({{(GW-SW){1'b0}}, r_base});
  wire signed [GW-1:0] base_sum = r_base_s + free_r;
  wire signed [GW-1:0] slot_sum = r_base_s + nx_shift;
  /* verilator lint_off UNUSEDSIGNAL */  // both wrapped into [0, R): their low SW bits
  wire signed [GW-1:0] base_wrap = (base_sum >= G_RN) ? base_sum - G_RN : base_sum;
  wire signed [GW-1:0] slot_wrap = (slot_sum < G_0) ? slot_sum + G_RN
                                 : (slot_sum >= G_RN) ? slot_sum - G_RN : slot_sum;
  /* verilator lint_on UNUSEDSIGNAL */
  wire [SW-1:0] next_base = base_wrap[SW-1:0];
  wire [SW-1:0] next_slot0 = slot_wrap[SW-1:0];
  wire [SW-1:0] slot_up = (slot_r == SLOT_LAST) ? {SW{1'b0}} : slot_r + 1'b1;
  wire signed [GW-1:0] next_left = left_r + G_S;
  wire signed [BW-1:0] next_lcol = lcol_r + B_STEP;

  always @(posedge clk) begin
    if (in_fire) mem[w_addr] <= in_data;
    if (!rst_n) begin
      w_pos <= {PW{1'b0}};
      w_slot <= {SW{1'b0}};
      rows_alloc <= {RW{1'b0}};
      rows_done <= {RW{1'b0}};
      oh <= {OHW{1'b0}};
      ow <= {OWW{1'b0}};
      kh <= {KW{1'b0}};
      kw <= {KW{1'b0}};
      cf <= {CFW{1'b0}};
      top_r <= G_NPAD;
      need_r <= rows_needed(G_NPAD, OH == 1);
      free_r <= rows_freed(G_NPAD, OH == 1);
      r_base <= {SW{1'b0}};
      slot0_r <= (PAD > 0) ? SLOT_LAST + 1'b1 - PAD[SW-1:0] : {SW{1'b0}};
      slot_r <= (PAD > 0) ? SLOT_LAST + 1'b1 - PAD[SW-1:0] : {SW{1'b0}};
      ih_r <= G_NPAD;
      iw_r <= G_NPAD;
      left_r <= G_NPAD;
      col_r <= B_LEFT0;
      lcol_r <= B_LEFT0;
    end else begin
      if (in_fire) begin
        w_pos <= row_end ? {PW{1'b0}} : w_pos + 1'b1;
        if (row_end) w_slot <= (w_slot == SLOT_LAST) ? {SW{1'b0}} : w_slot + 1'b1;
      end
      rows_alloc <= rows_alloc + {{(RW-1){1'b0}}, in_fire && row_start} - freed;
      rows_done <= rows_done + {{(RW-1){1'b0}}, in_fire && row_end} - freed;
      if (issue) begin
        cf <= cf_end ? {CFW{1'b0}} : cf + 1'b1;
        if (!kw_end) begin  // the next beat of the window row: the next column beat
          if (cf_end) begin
            kw <= kw + 1'b1;
            iw_r <= iw_r + G_1;
          end
          col_r <= col_r + B_1;
        end else if (!kh_end) begin  // the window's next row
          kw <= {KW{1'b0}};
          kh <= kh + 1'b1;
          ih_r <= ih_r + G_1;
          slot_r <= slot_up;
          iw_r <= left_r;
          col_r <= lcol_r;
        end else if (!row_out_end) begin  // the next window of the output row
          kw <= {KW{1'b0}};
          kh <= {KW{1'b0}};
          ow <= ow + 1'b1;
          ih_r <= top_r;
          slot_r <= slot0_r;
          left_r <= next_left;
          iw_r <= next_left;
          lcol_r <= next_lcol;
          col_r <= next_lcol;
        end else begin  // the next output row
          kw <= {KW{1'b0}};
          kh <= {KW{1'b0}};
          ow <= {OWW{1'b0}};
          oh <= last_row ? {OHW{1'b0}} : oh + 1'b1;
          top_r <= nx_top;
          need_r <= nx_need;
          free_r <= nx_free;
          r_base <= next_base;
          slot0_r <= next_slot0;
          slot_r <= next_slot0;
          ih_r <= nx_top;
          left_r <= G_NPAD;
          iw_r <= G_NPAD;
          lcol_r <= B_LEFT0;
          col_r <= B_LEFT0;
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
      rd_q <= mem[r_addr];  // r_addr < DEPTH (both fields in range)
      pad_q <= pad_now;
    end
  end
  assign out_data = pad_q ? {DW{1'b0}} : rd_q;
  assign out_valid = out_valid_r;
endmodule

`default_nettype wire
