// axe_fifo: synchronous stream FIFO of DEPTH beats (any DEPTH >= 1). in_ready and
// out_valid come straight from registers (full, not empty), so a FIFO between two layers
// cuts the combinational ready and valid paths through the chain: a layer's stall signal
// starts at a flip-flop (the full flag is set from count == DEPTH-1 and the handshakes,
// without an adder in the way).
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
  reg            full, empty;
  wire in_fire = in_valid && in_ready;
  wire out_fire = out_valid && out_ready;
  wire one_left = count == FULL - 1'b1;             // registered count only
  wire one_in = count == {{(CW-1){1'b0}}, 1'b1};

  assign in_ready = !full;
  assign out_valid = !empty;
  assign out_data = mem[rd];

  always @(posedge clk) begin
    if (in_fire) mem[wr] <= in_data;
    if (!rst_n) begin
      wr <= {AW{1'b0}};
      rd <= {AW{1'b0}};
      count <= {CW{1'b0}};
      full <= 1'b0;
      empty <= 1'b1;
    end else begin
      // a beat in and none out fills it from DEPTH-1; a beat out and none in empties it from 1
      full <= (full && !out_fire) || (one_left && in_fire && !out_fire);
      empty <= (empty && !in_fire) || (one_in && out_fire && !in_fire);
      if (in_fire) wr <= (wr == LAST) ? {AW{1'b0}} : wr + 1'b1;
      if (out_fire) rd <= (rd == LAST) ? {AW{1'b0}} : rd + 1'b1;
      if (in_fire && !out_fire) count <= count + 1'b1;
      else if (out_fire && !in_fire) count <= count - 1'b1;
    end
  end
endmodule

`default_nettype wire
