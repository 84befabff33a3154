// axe_rom: DEPTH x WIDTH read-only memory loaded from FILE ($readmemh), registered read
// with enable (block-RAM friendly). STYLE picks the synthesis mapping through yosys' and
// Vivado's rom_style attribute: 0 = tool's choice, 1 = block RAM, 2 = distributed (LUT) RAM.
`default_nettype none

module axe_rom #(
  parameter integer WIDTH = 8,
  parameter integer DEPTH = 16,
  parameter integer STYLE = 0,
  parameter FILE = "rom.hex",
  parameter integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
  input  wire                 clk,
  input  wire                 en,
  input  wire [AW-1:0]        addr,
  output reg  [WIDTH-1:0]     data
);
  generate
    if (STYLE == 1) begin : g_block
      (* rom_style = "block" *) reg [WIDTH-1:0] mem [0:DEPTH-1];
      initial $readmemh(FILE, mem);
      always @(posedge clk) if (en) data <= mem[addr];
    end else if (STYLE == 2) begin : g_dist
      (* rom_style = "distributed" *) reg [WIDTH-1:0] mem [0:DEPTH-1];
      initial $readmemh(FILE, mem);
      always @(posedge clk) if (en) data <= mem[addr];
    end else begin : g_auto
      reg [WIDTH-1:0] mem [0:DEPTH-1];
      initial $readmemh(FILE, mem);
      always @(posedge clk) if (en) data <= mem[addr];
    end
  endgenerate
endmodule

`default_nettype wire
