// axe_fifo: synchronous stream FIFO of DEPTH beats (any DEPTH >= 1). in_ready depends
// only on the fill level and out_valid only on emptiness, so a FIFO between two layers
// also cuts the combinational ready path through the chain.
`default_nettype none

module axe_fifo #(
  parameter integer BITS = 8,
  parameter integer DEPTH = 4
) (
  input  wire            clk,
  input  wire            rst_n,
  input  wire [BITS-1:0] in_data,
  input  wire            in_valid,
  output wire            in_ready,
  output wire [BITS-1:0] out_data,
  output wire            out_valid,
  input  wire            out_ready
);
  localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam integer CW = $clog2(DEPTH + 1);
  localparam [AW-1:0] LAST = DEPTH[AW-1:0] - 1'b1;
  localparam [CW-1:0] FULL = DEPTH[CW-1:0];

  reg [BITS-1:0] mem [0:DEPTH-1];
  reg [AW-1:0]   wr, rd;
  reg [CW-1:0]   count;
  wire in_fire = in_valid && in_ready;
  wire out_fire = out_valid && out_ready;

  assign in_ready = count != FULL;
  assign out_valid = count != {CW{1'b0}};
  assign out_data = mem[rd];

  always @(posedge clk) begin
    if (in_fire) mem[wr] <= in_data;
    if (!rst_n) begin
      wr <= {AW{1'b0}};
      rd <= {AW{1'b0}};
      count <= {CW{1'b0}};
    end else begin
      if (in_fire) wr <= (wr == LAST) ? {AW{1'b0}} : wr + 1'b1;
      if (out_fire) rd <= (rd == LAST) ? {AW{1'b0}} : rd + 1'b1;
      if (in_fire && !out_fire) count <= count + 1'b1;
      else if (out_fire && !in_fire) count <= count - 1'b1;
    end
  end
endmodule

`default_nettype wire
