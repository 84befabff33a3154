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
// Pipeline: issue (fold counters, operand registers, weight ROM read) [-> operand register]
// -> products [-> product register] -> SIMD adder tree [with registers inside] ->
// accumulators [-> outer accumulator when tiled] -> threshold ROM read [-> compare register]
// -> compare -> output register. PIPE (>= 0) bracketed stages are built, taken in this
// order: 1 the operand register (an ECP5 block RAM's clock-to-output alone is ~5.6 ns),
// 2 the compare register (accumulators and thresholds), 3 the product register, 4 and 5 a
// second operand and a second product register (room for the placer around a DSP
// multiplier: an ECP5 MULT18X18D takes ~3.9 ns between two routes), then registers
// inside the adder tree, at most one after each of its TL = ceil(log2(SIMD)) levels,
// spread evenly (the accumulator's adder counted as one more level): PIPE <= 5 + TL.
// Each stage delays a vector's result by one cycle and leaves the interval unchanged.
// Every stage holds while the output register is full and not taken (en = 0).
//
// Multipliers (RES_TYPE, FINN's resType): 0 the tool's choice, 1 LUTs: shift-and-add over
// the weight's bits, no `*` (so no tool maps it to a DSP block), 2 DSP: `*` with use_dsp.
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
  parameter integer THRESH_ROM_STYLE = 0,
  parameter integer PIPE = 0,
  parameter integer RES_TYPE = 0
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
  localparam integer CB = (N_THR > 0) ? $clog2(N_THR + 1) : 1;  // a threshold count's bits
  localparam integer NT = (N_THR > 0) ? N_THR : 1;
  localparam [SFW-1:0] SF_LAST = SF[SFW-1:0] - 1'b1;
  localparam [NFW-1:0] NF_LAST = NF[NFW-1:0] - 1'b1;
  localparam [WAW-1:0] WA_LAST = WDEPTH[WAW-1:0] - 1'b1;
  // optional pipeline stages (see the header), in the order PIPE adds them
  localparam integer TL = (SIMD > 1) ? $clog2(SIMD) : 0;  // adder tree levels
  localparam integer OP_REG = ((PIPE >= 1) ? 1 : 0) + ((PIPE >= 4) ? 1 : 0);
  localparam integer CMP_REG = (PIPE >= 2) ? 1 : 0;
  localparam integer PROD_REG = ((PIPE >= 3) ? 1 : 0) + ((PIPE >= 5) ? 1 : 0);
  localparam integer TREE_REGS = (PIPE > 5 + TL) ? TL : (PIPE > 5) ? PIPE - 5 : 0;
  localparam integer CW = 5 + NFW;  // control word of a beat: first, last, tfirst, tlast, ftile, nf

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
  reg [NFW-1:0] nf1;
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

  // Tiles: tfirst1/tlast1 mark a tile's first/last beat (the vector's when one stage),
  // ftile1 a beat of the vector's first tile.
  wire tfirst1, tlast1, ftile1;
  generate
    if (TILE > 0) begin : g_tiles
      reg [TFW-1:0] tf;
      reg tf1, tl1, rest_of_first;
      wire first_tile = first1 || rest_of_first;
      always @(posedge clk) begin
        if (!rst_n) begin
          tf <= {TFW{1'b0}};
          rest_of_first <= 1'b0;
        end else begin
          if (en && v1) rest_of_first <= first_tile && !tl1;
          if (issue) tf <= (tf == TF_LAST || sf == SF_LAST) ? {TFW{1'b0}} : tf + 1'b1;
        end
        if (issue) begin
          tf1 <= (tf == {TFW{1'b0}});
          tl1 <= (tf == TF_LAST) || (sf == SF_LAST);
        end
      end
      assign tfirst1 = tf1;
      assign tlast1 = tl1;
      assign ftile1 = first_tile;
    end else begin : g_one_stage
      assign tfirst1 = first1;
      assign tlast1 = last1;
      assign ftile1 = first1;
    end
  endgenerate

  // The beat's control word travels with its data: to the products (stage M, behind the
  // operand register) and on to the accumulators (stage C, behind the product register
  // and the adder tree's registers).
  wire [XW-1:0] x_m;
  wire [WW-1:0] w_m;
  wire vM, vC;
  /* verilator lint_off UNUSEDSIGNAL */
  wire firstM, lastM, tfirstM, tlastM, ftileM, firstC, lastC, tfirstC, tlastC, ftileC;
  wire [NFW-1:0] nfM, nfC;
  /* verilator lint_on UNUSEDSIGNAL */
  axe_pipe #(.WIDTH(XW + WW), .DEPTH(OP_REG), .RESET(0)) op_pipe (
    .clk(clk), .rst_n(rst_n), .en(en), .d({x_r, w_r}), .q({x_m, w_m}));
  axe_pipe #(.WIDTH(1 + CW), .DEPTH(OP_REG), .RESET(1)) ctl_m (
    .clk(clk), .rst_n(rst_n), .en(en),
    .d({v1, first1, last1, tfirst1, tlast1, ftile1, nf1}),
    .q({vM, firstM, lastM, tfirstM, tlastM, ftileM, nfM}));
  axe_pipe #(.WIDTH(1 + CW), .DEPTH(PROD_REG + TREE_REGS), .RESET(1)) ctl_c (
    .clk(clk), .rst_n(rst_n), .en(en),
    .d({vM, firstM, lastM, tfirstM, tlastM, ftileM, nfM}),
    .q({vC, firstC, lastC, tfirstC, tlastC, ftileC, nfC}));

  // vA/firstA/lastA/nfA: the stage whose accumulator update completes a vector's result
  // (the accumulators', or the outer accumulators' one stage later when tiled).
  /* verilator lint_off UNUSEDSIGNAL */
  wire vA, firstA, lastA;
  wire [NFW-1:0] nfA;
  /* verilator lint_on UNUSEDSIGNAL */
  generate
    if (TILE > 0) begin : g_outer_ctl
      reg vt, firstt, lastt;
      reg [NFW-1:0] nft;
      always @(posedge clk) begin
        if (!rst_n) vt <= 1'b0;
        else if (en) vt <= vC && tlastC;
        if (en && vC) begin  // read by the outer stage after a tile's last beat
          firstt <= ftileC;
          lastt <= lastC;
          nft <= nfC;
        end
      end
      assign vA = vt;
      assign firstA = firstt;
      assign lastA = lastt;
      assign nfA = nft;
    end else begin : g_one_ctl
      assign vA = vC;
      assign firstA = firstC;
      assign lastA = lastC;
      assign nfA = nfC;
    end
    if (PIPE > 5 + TL) begin : g_bad_pipe
      // more stages than the datapath has places for: elaboration stops here
      axe_mvau_PIPE_exceeds_5_plus_log2_SIMD bad ();
    end
  endgenerate

  // ---- products, SIMD adder tree, accumulators ----
  reg v2;
  always @(posedge clk) begin
    if (!rst_n) v2 <= 1'b0;
    else if (en) v2 <= vA && lastA;
  end

  wire [PE*RES_BITS-1:0] acc_all;
`ifdef AXE_SIM_OVERFLOW
  wire [PE*PROD_BITS*SIMD-1:0] prod_all;
`endif
  genvar p, s, l, j;
  generate
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      // tree[(l*SIMD + j)*DOT_BITS +: DOT_BITS]: node j of adder tree level l (level 0 the
      // products), exact in PROD_BITS + l bits (taken modulo 2^DOT_BITS past DOT_BITS),
      // held sign-extended to DOT_BITS; slots past a level's node count are 0.
      /* verilator lint_off UNUSEDSIGNAL */
      wire [(TL+1)*SIMD*DOT_BITS-1:0] tree /* verilator split_var */;  // one vector, levels apart
      /* verilator lint_on UNUSEDSIGNAL */
      for (s = 0; s < SIMD; s = s + 1) begin : g_simd
        wire signed [IN_BITS:0] xs;
        wire signed [W_BITS-1:0] ws = w_m[(p*SIMD + s)*W_BITS +: W_BITS];
        wire signed [PROD_BITS-1:0] prod;
        if (IN_SIGNED != 0) begin : g_xs
          assign xs = {x_m[s*IN_BITS + IN_BITS-1], x_m[s*IN_BITS +: IN_BITS]};
        end else begin : g_xu
          assign xs = {1'b0, x_m[s*IN_BITS +: IN_BITS]};
        end
        if (RES_TYPE == 1) begin : g_lut_mul
          // sum of xs * 2^b over the weight's set bits, the sign bit's (2^(W_BITS-1)) negative
          wire signed [PROD_BITS-1:0] xe;
          if (W_BITS > 1) begin : g_xe
            assign xe = {{(W_BITS-1){xs[IN_BITS]}}, xs};
          end else begin : g_xe1
            assign xe = xs;
          end
          reg signed [PROD_BITS-1:0] sum;
          integer b;
          always @* begin
            sum = {PROD_BITS{1'b0}};
            for (b = 0; b < W_BITS - 1; b = b + 1)
              sum = sum + ((xe <<< b) & {PROD_BITS{ws[b]}});
            sum = sum - ((xe <<< (W_BITS-1)) & {PROD_BITS{ws[W_BITS-1]}});
          end
          assign prod = sum;
        end else if (RES_TYPE == 2) begin : g_dsp_mul
          (* use_dsp = "yes" *) wire signed [PROD_BITS-1:0] dsp_prod = xs * ws;
          assign prod = dsp_prod;
        end else begin : g_mul
          assign prod = xs * ws;
        end
`ifdef AXE_SIM_OVERFLOW
        assign prod_all[(p*SIMD + s)*PROD_BITS +: PROD_BITS] = prod;
`endif
        wire [PROD_BITS-1:0] prod_q;  // behind the product register(s)
        axe_pipe #(.WIDTH(PROD_BITS), .DEPTH(PROD_REG), .RESET(0)) prod_pipe (
          .clk(clk), .rst_n(rst_n), .en(en), .d(prod), .q(prod_q));
        if (DOT_BITS > PROD_BITS) begin : g_ext
          assign tree[s*DOT_BITS +: DOT_BITS] = {{(DOT_BITS-PROD_BITS){prod_q[PROD_BITS-1]}}, prod_q};
        end else begin : g_trunc
          assign tree[s*DOT_BITS +: DOT_BITS] = prod_q[DOT_BITS-1:0];
        end
      end

      for (l = 1; l <= TL; l = l + 1) begin : g_lvl
        localparam integer NP = (SIMD + (1 << (l-1)) - 1) >> (l-1);  // nodes of level l-1
        localparam integer NL = (SIMD + (1 << l) - 1) >> l;
        localparam integer WP = (PROD_BITS + l - 1 < DOT_BITS) ? PROD_BITS + l - 1 : DOT_BITS;
        localparam integer WL = (PROD_BITS + l < DOT_BITS) ? PROD_BITS + l : DOT_BITS;
        // TREE_REGS registers after levels spread evenly over 1..TL
        localparam integer REG = ((l * (TREE_REGS+1)) / (TL+1) > ((l-1) * (TREE_REGS+1)) / (TL+1)) ? 1 : 0;
        for (j = 0; j < SIMD; j = j + 1) begin : g_node
          if (j < NL) begin : g_add
            wire [WP-1:0] a = tree[((l-1)*SIMD + 2*j)*DOT_BITS +: WP];
            wire [WL-1:0] sum;
            if (2*j + 1 < NP) begin : g_two
              wire [WP-1:0] b = tree[((l-1)*SIMD + 2*j + 1)*DOT_BITS +: WP];
              if (WL > WP) begin : g_grow
                assign sum = {a[WP-1], a} + {b[WP-1], b};
              end else begin : g_wrap
                assign sum = a + b;
              end
            end else begin : g_pass
              if (WL > WP) begin : g_grow
                assign sum = {a[WP-1], a};
              end else begin : g_same
                assign sum = a;
              end
            end
            wire [WL-1:0] sum_q;
            if (REG != 0) begin : g_reg
              reg [WL-1:0] r;
              always @(posedge clk) if (en) r <= sum;
              assign sum_q = r;
            end else begin : g_wire
              assign sum_q = sum;
            end
            if (DOT_BITS > WL) begin : g_ext
              assign tree[(l*SIMD + j)*DOT_BITS +: DOT_BITS] = {{(DOT_BITS-WL){sum_q[WL-1]}}, sum_q};
            end else begin : g_full
              assign tree[(l*SIMD + j)*DOT_BITS +: DOT_BITS] = sum_q;
            end
          end else begin : g_empty
            assign tree[(l*SIMD + j)*DOT_BITS +: DOT_BITS] = {DOT_BITS{1'b0}};
          end
        end
      end

      wire [DOT_BITS-1:0] dot = tree[TL*SIMD*DOT_BITS +: DOT_BITS];
      wire [ACC_BITS-1:0] dot_ext;
      if (ACC_BITS > DOT_BITS) begin : g_dext
        assign dot_ext = {{(ACC_BITS-DOT_BITS){dot[DOT_BITS-1]}}, dot};
      end else begin : g_dsame
        assign dot_ext = dot;
      end

      reg [ACC_BITS-1:0] acc;  // the inner register when tiled
      always @(posedge clk)
        if (en && vC) acc <= tfirstC ? dot_ext : acc + dot_ext;

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

  // ---- activation: thresholds, compare register, output register ----
  // whether at least n of the thermometer code ge's bits are set (n in 1 .. 2^CB - 1)
  function thermometer_bit(input [NT-1:0] ge, input [CB-1:0] n);
    integer i;
    begin
      thermometer_bit = 1'b0;
      for (i = 0; i < N_THR; i = i + 1)
        if (n == i[CB-1:0] + 1'b1) thermometer_bit = ge[i];
    end
  endfunction

  // the compare register (CMP_REG): the results, and their thresholds, one stage later
  wire vR;
  wire [PE*RES_BITS-1:0] acc_q;
  axe_pipe #(.WIDTH(1), .DEPTH(CMP_REG), .RESET(1)) ctl_r (
    .clk(clk), .rst_n(rst_n), .en(en), .d(v2), .q(vR));
  axe_pipe #(.WIDTH(PE*RES_BITS), .DEPTH(CMP_REG), .RESET(0)) acc_pipe (
    .clk(clk), .rst_n(rst_n), .en(en), .d(acc_all), .q(acc_q));

  wire [PE*OUT_BITS-1:0] result;
  generate
    if (N_THR > 0) begin : g_thr
      wire [TW-1:0] thr_r, thr_q;
      axe_rom #(.WIDTH(TW), .DEPTH(NF), .STYLE(THRESH_ROM_STYLE), .FILE(THRESH_FILE), .AW(NFW))
        trom (.clk(clk), .en(en && vA && lastA), .addr(nfA), .data(thr_r));
      axe_pipe #(.WIDTH(TW), .DEPTH(CMP_REG), .RESET(0)) thr_pipe (
        .clk(clk), .rst_n(rst_n), .en(en), .d(thr_r), .q(thr_q));
      for (p = 0; p < PE; p = p + 1) begin : g_cmp
        wire [RES_BITS-1:0] a = acc_q[p*RES_BITS +: RES_BITS];
        wire [N_THR-1:0] ge;
        for (s = 0; s < N_THR; s = s + 1) begin : g_ge
          wire [TH_BITS-1:0] t = thr_q[(p*N_THR + s)*TH_BITS +: TH_BITS];
          if (ACC_SIGNED != 0) begin : g_sc
            assign ge[s] = $signed({a[RES_BITS-1], a}) >= $signed(t);
          end else begin : g_uc
            assign ge[s] = {1'b0, a} >= t;
          end
        end
        // The thresholds are non-decreasing, so ge is a thermometer code (ge[k] = k < count):
        // count by binary search, one bit a step from the top (FINN's thresholding does the
        // same), a few mux levels where adding the ge bits up would be a chain of adders.
        reg [CB-1:0] count, probe;
        integer b;
        always @* begin
          count = {CB{1'b0}};
          for (b = CB - 1; b >= 0; b = b - 1) begin
            probe = count;
            probe[b] = 1'b1;
            if (thermometer_bit(ge, probe)) count = probe;
          end
        end
        // count + ACT_VAL in OUT_BITS two's complement bits (count <= N_THR fits them unsigned)
        if (OUT_BITS > CB) begin : g_cext
          assign result[p*OUT_BITS +: OUT_BITS] = {{(OUT_BITS-CB){1'b0}}, count} + ACT_OFFSET;
        end else begin : g_csame
          assign result[p*OUT_BITS +: OUT_BITS] = count + ACT_OFFSET;
        end
      end
    end else begin : g_raw
      assign result = acc_q;
    end
  endgenerate

  reg [PE*OUT_BITS-1:0] out_r;
  always @(posedge clk) begin
    if (!rst_n) out_valid_r <= 1'b0;
    else if (en) out_valid_r <= vR;
    if (en && vR) out_r <= result;
  end
  assign out_data = out_r;
  assign out_valid = out_valid_r;

`ifdef AXE_SIM_OVERFLOW
  // Shadow accumulators: the exact partial sums of the current tile (inner) and of the
  // whole vector (outer, checked at tile ends), to flag any value a register cannot hold;
  // they follow the beats at the products (stage M).
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
      next_sum[sp] = (tfirstM ? 64'sd0 : shadow[sp]) + beat_sum;
      next_total[sp] = (firstM ? 64'sd0 : shadow_total[sp]) + beat_sum;
      next_ovf[sp] = next_sum[sp] < REG_MIN || next_sum[sp] > REG_MAX || (!firstM && ovf_seen[sp]);
      next_ovf_outer[sp] = (TILE > 0 && tlastM
                            && (next_total[sp] < OUTER_MIN || next_total[sp] > OUTER_MAX))
                           || (!firstM && ovf_outer_seen[sp]);
      if (lastM && next_ovf[sp]) n_ovf = n_ovf + 1;
      if (lastM && next_ovf_outer[sp]) n_ovf_outer = n_ovf_outer + 1;
    end
  end
  always @(posedge clk) begin
    if (rst_n && en && vM) begin
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

