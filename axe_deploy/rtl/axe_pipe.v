// axe_pipe: DEPTH (>= 0) register stages of WIDTH bits, all enabled by en; RESET clears
// them (for valid bits). DEPTH 0 is a wire.
`default_nettype none

module axe_pipe #(
  parameter integer WIDTH = 1,
  parameter integer DEPTH = 1,
  parameter integer RESET = 0
) (
  input  wire             clk,
  input  wire             rst_n,
  input  wire             en,
  input  wire [WIDTH-1:0] d,
  output wire [WIDTH-1:0] q
);
  generate
    if (DEPTH == 0) begin : g_wire
      assign q = d;
      wire _unused = &{1'b0, clk, rst_n, en};
    end else begin : g_regs
      reg [DEPTH*WIDTH-1:0] r;  // stage i in [i*WIDTH +: WIDTH], the input side at 0
      wire [DEPTH*WIDTH-1:0] next;
      if (DEPTH == 1) begin : g_one
        assign next = d;
      end else begin : g_shift
        assign next = {r[(DEPTH-1)*WIDTH-1:0], d};
      end
      always @(posedge clk) begin
        if (RESET != 0 && !rst_n) r <= {DEPTH*WIDTH{1'b0}};
        else if (en) r <= next;
      end
      assign q = r[DEPTH*WIDTH-1 -: WIDTH];
    end
  endgenerate
endmodule

`default_nettype wire
