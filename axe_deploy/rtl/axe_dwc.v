// axe_dwc: stream data-width converter, IN_LANES elements per input beat to OUT_LANES
// elements per output beat, BITS bits an element; element order is kept (element 0 of a
// beat in the low bits). Both handshakes run at full rate.
// - equal lane counts: a wire;
// - OUT_LANES a multiple of IN_LANES: a shift register collects OUT/IN input beats;
// - IN_LANES a multiple of OUT_LANES: a register is loaded and shifted out;
// - otherwise a buffer of IN_LANES + OUT_LANES - 1 elements, enough that an input beat is
//   always accepted while no output beat can be formed, so it never deadlocks.
`default_nettype none

module axe_dwc #(
  parameter integer IN_LANES = 2,
  parameter integer OUT_LANES = 3,
  parameter integer BITS = 4
) (
  input  wire                      clk,
  input  wire                      rst_n,
  input  wire [IN_LANES*BITS-1:0]  in_data,
  input  wire                      in_valid,
  output wire                      in_ready,
  output wire [OUT_LANES*BITS-1:0] out_data,
  output wire                      out_valid,
  input  wire                      out_ready
);
  localparam integer IW = IN_LANES * BITS;
  localparam integer OW = OUT_LANES * BITS;
  wire in_fire = in_valid && in_ready;
  wire out_fire = out_valid && out_ready;

  generate
    if (IN_LANES == OUT_LANES) begin : g_same
      assign out_data = in_data;
      assign out_valid = in_valid;
      assign in_ready = out_ready;
      wire _unused = &{1'b0, clk, rst_n, in_fire, out_fire};
    end else if (OUT_LANES % IN_LANES == 0) begin : g_up
      localparam integer M = OUT_LANES / IN_LANES;
      localparam integer CW = $clog2(M + 1);
      localparam [CW-1:0] FULL = M[CW-1:0];
      reg [OW-1:0] buffer;
      reg [CW-1:0] count;
      assign out_valid = count == FULL;
      assign out_data = buffer;
      assign in_ready = !out_valid || out_ready;
      always @(posedge clk) begin
        // new beats enter at the top: after M beats the first one is at the bottom
        if (in_fire) buffer <= {in_data, buffer[OW-1:IW]};
        if (!rst_n) count <= {CW{1'b0}};
        else if (in_fire) count <= out_fire ? {{(CW-1){1'b0}}, 1'b1} : count + 1'b1;
        else if (out_fire) count <= {CW{1'b0}};
      end
    end else if (IN_LANES % OUT_LANES == 0) begin : g_down
      localparam integer M = IN_LANES / OUT_LANES;
      localparam integer CW = $clog2(M + 1);
      localparam [CW-1:0] FULL = M[CW-1:0];
      reg [IW-1:0] buffer;
      reg [CW-1:0] left;
      assign out_valid = left != {CW{1'b0}};
      assign out_data = buffer[OW-1:0];
      assign in_ready = !out_valid || (left == {{(CW-1){1'b0}}, 1'b1} && out_ready);
      always @(posedge clk) begin
        if (in_fire) buffer <= in_data;
        else if (out_fire) buffer <= buffer >> OW;
        if (!rst_n) left <= {CW{1'b0}};
        else if (in_fire) left <= FULL;
        else if (out_fire) left <= left - 1'b1;
      end
    end else begin : g_any
      localparam integer CAP = IN_LANES + OUT_LANES - 1;
      localparam integer CW = $clog2(CAP + 1);
      localparam [CW-1:0] IN_N = IN_LANES[CW-1:0];
      localparam [CW-1:0] OUT_N = OUT_LANES[CW-1:0];
      localparam [CW-1:0] SPACE = CAP[CW-1:0] - IN_LANES[CW-1:0];
      reg  [CAP*BITS-1:0] buffer;
      reg  [CW-1:0]       count;
      wire [CW-1:0]       kept = out_fire ? count - OUT_N : count;
      assign out_valid = count >= OUT_N;
      assign out_data = buffer[OW-1:0];
      assign in_ready = kept <= SPACE;
      reg [CAP*BITS-1:0] next_buffer;
      integer e;
      always @* begin
        next_buffer = out_fire ? buffer >> OW : buffer;
        if (in_fire)
          for (e = 0; e < IN_LANES; e = e + 1)
            next_buffer[({{(32-CW){1'b0}}, kept} + e)*BITS +: BITS] = in_data[e*BITS +: BITS];
      end
      always @(posedge clk) begin
        if (!rst_n) count <= {CW{1'b0}};
        else count <= kept + (in_fire ? IN_N : {CW{1'b0}});
        buffer <= next_buffer;
      end
    end
  endgenerate
endmodule

`default_nettype wire
