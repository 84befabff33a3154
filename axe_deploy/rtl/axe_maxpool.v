// axe_maxpool: streaming 2 x 2 max-pool, stride 2, floor mode (an odd last row or column
// is read and dropped). Channels-last in and out, PE channels a beat, elements SIGNED or
// unsigned. A buffer of OW*C/PE beats holds the running maxima of the current output row;
// the output beat for (oh, ow) leaves when input pixel (2*oh+1, 2*ow+1) arrives.
`default_nettype none

module axe_maxpool #(
  parameter integer H = 4,
  parameter integer W = 4,
  parameter integer C = 2,
  parameter integer PE = 1,
  parameter integer BITS = 4,
  parameter integer SIGNED = 0
) (
  input  wire               clk,
  input  wire               rst_n,
  input  wire [PE*BITS-1:0] in_data,
  input  wire               in_valid,
  output wire               in_ready,
  output wire [PE*BITS-1:0] out_data,
  output wire               out_valid,
  input  wire               out_ready
);
  localparam integer CF = C / PE;
  localparam integer OW = W / 2;
  localparam integer DEPTH = OW * CF;
  localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam integer DW = PE * BITS;
  localparam integer HW = (H > 1) ? $clog2(H) : 1;
  localparam integer WW = (W > 1) ? $clog2(W) : 1;
  localparam [HW-1:0]  H_LAST = H[HW-1:0] - 1'b1;
  localparam [WW-1:0]  W_LAST = W[WW-1:0] - 1'b1;
  localparam [AW-1:0]  CF_LAST = CF[AW-1:0] - 1'b1;  // wraps correctly if CF = 2^AW

  reg [HW-1:0]  ih;
  reg [WW-1:0]  iw;
  reg [AW-1:0]  cf;    // address-wide, so that base + cf needs no extension
  reg [AW-1:0]  base;  // (iw / 2) * CF: the output column's first buffer address
  reg [AW-1:0]  addr;  // base + cf, kept in a register: the read-modify-write of run[addr]
                       // is the whole cycle, with no adder in front of it
  reg           out_valid_r;
  reg [DW-1:0]  out_r;
  reg [DW-1:0]  run [0:DEPTH-1];
  wire en = !out_valid_r || out_ready;
  assign in_ready = en;
  wire in_fire = in_valid && en;
  wire used = !((H % 2 == 1) && ih == H_LAST) && !((W % 2 == 1) && iw == W_LAST);
  wire first = !ih[0] && !iw[0];
  wire last = ih[0] && iw[0];
  wire [DW-1:0] prev = run[addr];

  wire [DW-1:0] maxed;
  genvar p;
  generate
    for (p = 0; p < PE; p = p + 1) begin : g_lane
      wire [BITS-1:0] a = prev[p*BITS +: BITS];
      wire [BITS-1:0] b = in_data[p*BITS +: BITS];
      wire a_wins;
      if (SIGNED != 0) begin : g_s
        assign a_wins = $signed(a) > $signed(b);
      end else begin : g_u
        assign a_wins = a > b;
      end
      assign maxed[p*BITS +: BITS] = (a_wins && !first) ? a : b;
    end
  endgenerate

  always @(posedge clk) begin
    if (in_fire && used && !last) run[addr] <= maxed;
    if (in_fire && used && last) out_r <= maxed;
    if (!rst_n) begin
      ih <= {HW{1'b0}};
      iw <= {WW{1'b0}};
      cf <= {AW{1'b0}};
      base <= {AW{1'b0}};
      addr <= {AW{1'b0}};
      out_valid_r <= 1'b0;
    end else begin
      if (en) out_valid_r <= in_fire && used && last;
      if (in_fire) begin
        cf <= (cf == CF_LAST) ? {AW{1'b0}} : cf + 1'b1;
        // the next beat's base + cf: the next address in the pixel, else the next pixel's base
        if (cf != CF_LAST) addr <= addr + 1'b1;
        else if (iw == W_LAST) addr <= {AW{1'b0}};
        else if (iw[0]) addr <= base + CF[AW-1:0];
        else addr <= base;
        if (cf == CF_LAST) begin
          iw <= (iw == W_LAST) ? {WW{1'b0}} : iw + 1'b1;
          if (iw == W_LAST) base <= {AW{1'b0}};
          else if (iw[0]) base <= base + CF[AW-1:0];
          if (iw == W_LAST) ih <= (ih == H_LAST) ? {HW{1'b0}} : ih + 1'b1;
        end
      end
    end
  end
  assign out_data = out_r;
  assign out_valid = out_valid_r;
endmodule

`default_nettype wire
