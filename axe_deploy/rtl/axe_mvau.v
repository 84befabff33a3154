// axe_mvau: matrix-vector-activation unit (FINN's MVAU), one layer y = thr(W x).
//
// Stream in:  MW/SIMD beats per vector, element s of a beat in bits [s*IN_BITS +: IN_BITS],
//             element index sf*SIMD + s.
// Stream out: MH/PE beats per vector, lane p of beat nf is neuron nf*PE + p.
// The vector is taken from the input stream during neuron fold 0 and replayed from a
// buffer for folds 1..NF-1, so one vector costs SF*NF cycles (SF = MW/SIMD, NF = MH/PE).
//
// Arithmetic: every lane's accumulator register is exactly ACC_BITS wide. Products and
// the SIMD adder tree are computed modulo 2^ACC_BITS (never wider than the sum needs),
// which gives the true dot product whenever it fits the register. Thresholds are stored
// clamped to [register min, register max + 1] in ACC_BITS+1 bits, so a threshold outside
// the register's range compares exactly (always / never reached).
// Output: number of thresholds <= acc (N_THR > 0), or the accumulator itself (N_THR = 0).
//
// Multi-stage accumulation (TILE > 0; TILE a multiple of SIMD, so a tile is TILE/SIMD whole
// folds): the accumulator above is the inner register, restarted at every tile of TILE
// consecutive elements; at the end of a tile its value is added, one pipeline stage later,
// into an outer register of exactly OUTER_BITS, which is what the thresholds (or the output)
// see. The tile sum reaches the outer register sign- (ACC_SIGNED) or zero-extended, and the
// outer sum is taken modulo 2^OUTER_BITS like the inner one.
//
// ROMs (axe_rom; *_ROM_STYLE 0: the tool's choice, 1: block RAM, 2: distributed RAM):
// WEIGHT_FILE holds SF*NF words of PE*SIMD*W_BITS bits (address nf*SF + sf, lane p,
// element s at bits [(p*SIMD + s)*W_BITS +: W_BITS]); THRESH_FILE holds NF words of
// PE*N_THR*(RES_BITS+1) bits (RES_BITS: OUTER_BITS when tiled, else ACC_BITS) (lane p, threshold i at [(p*N_THR + i)*(ACC_BITS+1) +: ...]).
//
// Pipeline: issue (operand registers, weight ROM read) -> MAC (accumulators, threshold ROM
// read on the last fold step) [-> outer accumulator when tiled] -> compare -> output register. Every stage holds while the
// output register is full and not taken (en = 0).
//
// Simulation only (`define AXE_SIM_OVERFLOW): 64-bit shadow accumulators per lane count,
// in ovf_count, the output values whose (tile) accumulation ever left the inner register's
// range and, in ovf_outer_count (tiled only), those whose sum of tile sums ever left the
// outer register's range.
`default_nettype none

module axe_mvau #(
  parameter integer MW = 4,
  parameter integer MH = 4,
  parameter integer SIMD = 1,
  parameter integer PE = 1,
  parameter integer IN_BITS = 4,
  parameter integer IN_SIGNED = 0,
  parameter integer W_BITS = 4,
  parameter integer ACC_BITS = 16,
  parameter integer ACC_SIGNED = 1,
  parameter integer TILE = 0,
  parameter integer OUTER_BITS = ACC_BITS,
  parameter integer N_THR = 0,
  parameter integer ACT_VAL = 0,  // added to the threshold count (FINN's ActVal; < 0: signed output)
  parameter integer OUT_BITS = (N_THR == 0) ? ((TILE > 0) ? OUTER_BITS : ACC_BITS)
                                            : $clog2(N_THR + 1),
  parameter WEIGHT_FILE = "weights.hex",
  parameter THRESH_FILE = "thresholds.hex",
  parameter integer WEIGHT_ROM_STYLE = 0,
  parameter integer THRESH_ROM_STYLE = 0
) (
  input  wire                    clk,
  input  wire                    rst_n,
  input  wire [SIMD*IN_BITS-1:0] in_data,
  input  wire                    in_valid,
  output wire                    in_ready,
  output wire [PE*OUT_BITS-1:0]  out_data,
  output wire                    out_valid,
  input  wire                    out_ready
);
  localparam integer SF = MW / SIMD;
  localparam integer NF = MH / PE;
  localparam integer SFW = (SF > 1) ? $clog2(SF) : 1;
  localparam integer NFW = (NF > 1) ? $clog2(NF) : 1;
  localparam integer WDEPTH = SF * NF;
  localparam integer WAW = (WDEPTH > 1) ? $clog2(WDEPTH) : 1;
  localparam integer XW = SIMD * IN_BITS;
  localparam integer WW = PE * SIMD * W_BITS;
  // A signed W_BITS x (signed or unsigned) IN_BITS product fits IN_BITS + W_BITS signed bits.
  localparam integer PROD_BITS = IN_BITS + W_BITS;
  localparam integer DOT_FULL = PROD_BITS + $clog2(SIMD);
  localparam integer DOT_BITS = (DOT_FULL < ACC_BITS) ? DOT_FULL : ACC_BITS;
  localparam integer RES_BITS = (TILE > 0) ? OUTER_BITS : ACC_BITS;
  localparam integer TH_BITS = RES_BITS + 1;
  localparam integer TF = (TILE > 0) ? TILE / SIMD : SF;  // folds a tile
  localparam integer TFW = (TF > 1) ? $clog2(TF) : 1;
  localparam [TFW-1:0] TF_LAST = TF[TFW-1:0] - 1'b1;
  localparam integer TW = PE * N_THR * TH_BITS;
  localparam [OUT_BITS-1:0] ACT_OFFSET = ACT_VAL[OUT_BITS-1:0];
  localparam [SFW-1:0] SF_LAST = SF[SFW-1:0] - 1'b1;
  localparam [NFW-1:0] NF_LAST = NF[NFW-1:0] - 1'b1;
  localparam [WAW-1:0] WA_LAST = WDEPTH[WAW-1:0] - 1'b1;

  // ---- issue: fold counters, input buffer, weight ROM ----
  reg  [SFW-1:0] sf;
  reg  [NFW-1:0] nf;
  reg  [WAW-1:0] wa;
  reg            out_valid_r;
  wire           en = !out_valid_r || out_ready;
  wire           need_in = (nf == {NFW{1'b0}});
  wire           issue = en && (!need_in || in_valid);
  assign in_ready = en && need_in;

  always @(posedge clk) begin
    if (!rst_n) begin
      sf <= {SFW{1'b0}};
      nf <= {NFW{1'b0}};
      wa <= {WAW{1'b0}};
    end else if (issue) begin
      wa <= (wa == WA_LAST) ? {WAW{1'b0}} : wa + 1'b1;
      if (sf == SF_LAST) begin
        sf <= {SFW{1'b0}};
        nf <= (nf == NF_LAST) ? {NFW{1'b0}} : nf + 1'b1;
      end else begin
        sf <= sf + 1'b1;
      end
    end
  end

  wire [XW-1:0] x_now;
  generate
    if (NF > 1) begin : g_ibuf
      reg [XW-1:0] ibuf [0:SF-1];
      always @(posedge clk)
        if (issue && need_in) ibuf[sf] <= in_data;
      assign x_now = need_in ? in_data : ibuf[sf];
    end else begin : g_noibuf
      assign x_now = in_data;
    end
  endgenerate

  wire [WW-1:0] w_r;
  axe_rom #(.WIDTH(WW), .DEPTH(WDEPTH), .STYLE(WEIGHT_ROM_STYLE), .FILE(WEIGHT_FILE), .AW(WAW))
    wrom (.clk(clk), .en(issue), .addr(wa), .data(w_r));

  reg [XW-1:0]  x_r;
  reg           v1, first1, last1;
  /* verilator lint_off UNUSEDSIGNAL */
  reg [NFW-1:0] nf1;  // read by the threshold ROM only
  /* verilator lint_on UNUSEDSIGNAL */
  always @(posedge clk) begin
    if (!rst_n) v1 <= 1'b0;
    else if (en) v1 <= issue;
    if (issue) begin
      x_r <= x_now;
      first1 <= (sf == {SFW{1'b0}});
      last1 <= (sf == SF_LAST);
      nf1 <= nf;
    end
  end

  // Tiles: tfirst1/tlast1 mark a tile's first/last beat in the MAC stage (the vector's
  // when one stage). vA/firstA/lastA/nfA: the stage whose accumulator update completes a
  // vector's result (the MAC stage, or the outer accumulator's when tiled), whether a beat
  // is there, its vector's first/last beat, its neuron fold (the threshold ROM address).
  /* verilator lint_off UNUSEDSIGNAL */
  wire tfirst1, tlast1, vA, firstA, lastA;
  wire [NFW-1:0] nfA;
  /* verilator lint_on UNUSEDSIGNAL */
  generate
    if (TILE > 0) begin : g_tiles
      reg [TFW-1:0] tf;
      reg tf1, tl1, vt, firstt, lastt, rest_of_first;
      reg [NFW-1:0] nft;
      // the beat in the MAC stage belongs to the vector's first tile
      wire first_tile = first1 || rest_of_first;
      always @(posedge clk) begin
        if (!rst_n) begin
          tf <= {TFW{1'b0}};
          vt <= 1'b0;
          rest_of_first <= 1'b0;
        end else begin
          if (en && v1) rest_of_first <= first_tile && !tl1;
          if (issue) tf <= (tf == TF_LAST || sf == SF_LAST) ? {TFW{1'b0}} : tf + 1'b1;
          if (en) vt <= v1 && tl1;
        end
        if (issue) begin
          tf1 <= (tf == {TFW{1'b0}});
          tl1 <= (tf == TF_LAST) || (sf == SF_LAST);
        end
        if (en && v1) begin  // read by the outer stage after a tile's last beat
          firstt <= first_tile;
          lastt <= last1;
          nft <= nf1;
        end
      end
      assign tfirst1 = tf1;
      assign tlast1 = tl1;
      assign vA = vt;
      assign firstA = firstt;
      assign lastA = lastt;
      assign nfA = nft;
    end else begin : g_one_stage
      assign tfirst1 = first1;
      assign tlast1 = last1;
      assign vA = v1;
      assign firstA = first1;
      assign lastA = last1;
      assign nfA = nf1;
    end
  endgenerate

  // ---- MAC: products, SIMD adder tree, accumulators ----
  reg v2;
  always @(posedge clk) begin
    if (!rst_n) v2 <= 1'b0;
    else if (en) v2 <= vA && lastA;
  end

  wire [PE*RES_BITS-1:0] acc_all;
`ifdef AXE_SIM_OVERFLOW
  wire [PE*PROD_BITS*SIMD-1:0] prod_all;
`endif
  genvar p, s;
  generate
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      wire [DOT_BITS-1:0] term [0:SIMD-1];
      for (s = 0; s < SIMD; s = s + 1) begin : g_simd
        wire signed [IN_BITS:0] xs;
        wire signed [W_BITS-1:0] ws = w_r[(p*SIMD + s)*W_BITS +: W_BITS];
        wire signed [PROD_BITS-1:0] prod;
        if (IN_SIGNED != 0) begin : g_xs
          assign xs = {x_r[s*IN_BITS + IN_BITS-1], x_r[s*IN_BITS +: IN_BITS]};
        end else begin : g_xu
          assign xs = {1'b0, x_r[s*IN_BITS +: IN_BITS]};
        end
        assign prod = xs * ws;
`ifdef AXE_SIM_OVERFLOW
        assign prod_all[(p*SIMD + s)*PROD_BITS +: PROD_BITS] = prod;
`endif
        if (DOT_BITS > PROD_BITS) begin : g_ext
          assign term[s] = {{(DOT_BITS-PROD_BITS){prod[PROD_BITS-1]}}, prod};
        end else begin : g_trunc
          assign term[s] = prod[DOT_BITS-1:0];
        end
      end

      reg [DOT_BITS-1:0] dot;
      integer i;
      always @* begin
        dot = {DOT_BITS{1'b0}};
        for (i = 0; i < SIMD; i = i + 1) dot = dot + term[i];
      end

      wire [ACC_BITS-1:0] dot_ext;
      if (ACC_BITS > DOT_BITS) begin : g_dext
        assign dot_ext = {{(ACC_BITS-DOT_BITS){dot[DOT_BITS-1]}}, dot};
      end else begin : g_dsame
        assign dot_ext = dot;
      end

      reg [ACC_BITS-1:0] acc;  // the inner register when tiled
      always @(posedge clk)
        if (en && v1) acc <= tfirst1 ? dot_ext : acc + dot_ext;

      if (TILE > 0) begin : g_outer
        wire [OUTER_BITS-1:0] tile_sum;
        if (OUTER_BITS > ACC_BITS) begin : g_text
          wire fill = (ACC_SIGNED != 0) && acc[ACC_BITS-1];
          assign tile_sum = {{(OUTER_BITS-ACC_BITS){fill}}, acc};
        end else begin : g_tsame
          assign tile_sum = acc;
        end
        reg [OUTER_BITS-1:0] outer;
        always @(posedge clk)
          if (en && vA) outer <= firstA ? tile_sum : outer + tile_sum;
        assign acc_all[p*RES_BITS +: RES_BITS] = outer;
      end else begin : g_one
        assign acc_all[p*RES_BITS +: RES_BITS] = acc;
      end
    end
  endgenerate

  // ---- activation: thresholds, output register ----
  wire [PE*OUT_BITS-1:0] result;
  generate
    if (N_THR > 0) begin : g_thr
      wire [TW-1:0] thr_r;
      axe_rom #(.WIDTH(TW), .DEPTH(NF), .STYLE(THRESH_ROM_STYLE), .FILE(THRESH_FILE), .AW(NFW))
        trom (.clk(clk), .en(en && vA && lastA), .addr(nfA), .data(thr_r));
      for (p = 0; p < PE; p = p + 1) begin : g_cmp
        wire [RES_BITS-1:0] a = acc_all[p*RES_BITS +: RES_BITS];
        wire [N_THR-1:0] ge;
        for (s = 0; s < N_THR; s = s + 1) begin : g_ge
          wire [TH_BITS-1:0] t = thr_r[(p*N_THR + s)*TH_BITS +: TH_BITS];
          if (ACC_SIGNED != 0) begin : g_sc
            assign ge[s] = $signed({a[RES_BITS-1], a}) >= $signed(t);
          end else begin : g_uc
            assign ge[s] = {1'b0, a} >= t;
          end
        end
        reg [OUT_BITS-1:0] count;
        integer k;
        always @* begin
          count = {OUT_BITS{1'b0}};
          for (k = 0; k < N_THR; k = k + 1) count = count + {{(OUT_BITS-1){1'b0}}, ge[k]};
        end
        // count + ACT_VAL in OUT_BITS two's complement bits (count <= N_THR fits them unsigned)
        assign result[p*OUT_BITS +: OUT_BITS] = count + ACT_OFFSET;
      end
    end else begin : g_raw
      assign result = acc_all;
    end
  endgenerate

  reg [PE*OUT_BITS-1:0] out_r;
  always @(posedge clk) begin
    if (!rst_n) out_valid_r <= 1'b0;
    else if (en) out_valid_r <= v2;
    if (en && v2) out_r <= result;
  end
  assign out_data = out_r;
  assign out_valid = out_valid_r;

`ifdef AXE_SIM_OVERFLOW
  // Shadow accumulators: the exact partial sums of the current tile (inner) and of the
  // whole vector (outer, checked at tile ends), to flag any value a register cannot hold.
  localparam signed [63:0] REG_MIN = (ACC_SIGNED != 0) ? -(64'sd1 <<< (ACC_BITS-1)) : 64'sd0;
  localparam signed [63:0] REG_MAX = (ACC_SIGNED != 0) ? (64'sd1 <<< (ACC_BITS-1)) - 64'sd1
                                                       : (64'sd1 <<< ACC_BITS) - 64'sd1;
  localparam signed [63:0] OUTER_MIN = (ACC_SIGNED != 0) ? -(64'sd1 <<< (OUTER_BITS-1)) : 64'sd0;
  localparam signed [63:0] OUTER_MAX = (ACC_SIGNED != 0) ? (64'sd1 <<< (OUTER_BITS-1)) - 64'sd1
                                                         : (64'sd1 <<< OUTER_BITS) - 64'sd1;
  reg signed [63:0] shadow [0:PE-1];
  reg signed [63:0] next_sum [0:PE-1];
  reg signed [63:0] shadow_total [0:PE-1];
  reg signed [63:0] next_total [0:PE-1];
  reg signed [63:0] beat_sum;
  reg [PE-1:0] ovf_seen, next_ovf, ovf_outer_seen, next_ovf_outer;
  integer ovf_count, ovf_outer_count, n_ovf, n_ovf_outer, sp, ss;
  initial ovf_count = 0;
  initial ovf_outer_count = 0;
  always @* begin
    n_ovf = 0;
    n_ovf_outer = 0;
    for (sp = 0; sp < PE; sp = sp + 1) begin
      beat_sum = 64'sd0;
      for (ss = 0; ss < SIMD; ss = ss + 1)
        beat_sum = beat_sum
                 + {{(64-PROD_BITS){prod_all[(sp*SIMD + ss)*PROD_BITS + PROD_BITS-1]}},
                    prod_all[(sp*SIMD + ss)*PROD_BITS +: PROD_BITS]};
      next_sum[sp] = (tfirst1 ? 64'sd0 : shadow[sp]) + beat_sum;
      next_total[sp] = (first1 ? 64'sd0 : shadow_total[sp]) + beat_sum;
      next_ovf[sp] = next_sum[sp] < REG_MIN || next_sum[sp] > REG_MAX || (!first1 && ovf_seen[sp]);
      next_ovf_outer[sp] = (TILE > 0 && tlast1
                            && (next_total[sp] < OUTER_MIN || next_total[sp] > OUTER_MAX))
                           || (!first1 && ovf_outer_seen[sp]);
      if (last1 && next_ovf[sp]) n_ovf = n_ovf + 1;
      if (last1 && next_ovf_outer[sp]) n_ovf_outer = n_ovf_outer + 1;
    end
  end
  always @(posedge clk) begin
    if (rst_n && en && v1) begin
      for (sp = 0; sp < PE; sp = sp + 1) begin
        shadow[sp] <= next_sum[sp];
        shadow_total[sp] <= next_total[sp];
      end
      ovf_seen <= next_ovf;
      ovf_outer_seen <= next_ovf_outer;
      ovf_count <= ovf_count + n_ovf;
      ovf_outer_count <= ovf_outer_count + n_ovf_outer;
    end
  end
`endif
endmodule

`default_nettype wire
